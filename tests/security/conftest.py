"""Fixtures borrowed from the gate tests: a real, verifying gate server."""

from tests.gate.conftest import gate, gate_server  # noqa: F401 (fixtures)
