"""The order lifecycle's invariants, proved over random interleavings (tests/lifecycle/machine.py).

Bounded for CI: ``LIFECYCLE_EXAMPLES`` examples (default 20) of up to ``LIFECYCLE_STEPS``
steps (default 30) each, on the database the suite runs on: SQLite, or PostgreSQL with
``DATABASE_URL`` (real row locks); CI runs it on both. A longer hunt:

    LIFECYCLE_EXAMPLES=500 LIFECYCLE_STEPS=60 .venv/bin/pytest tests/lifecycle/test_lifecycle_machine.py

Failing examples it found are kept as ordinary tests in tests/lifecycle/test_found_by_the_machine.py.
"""

import os

from django.test import override_settings
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from .machine import REACHED, Gate, LifecycleMachine, provider_apis

EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "20"))
STEPS = int(os.environ.get("LIFECYCLE_STEPS", "30"))


def _run():
    gate = Gate()
    gate.server.start()
    LifecycleMachine.gate = gate
    try:
        # The gate's guards are proved in tests/gate; here every answer must reach the checkout.
        with override_settings(GATE_RATE_LIMIT_PER_SESSION=10**6, GATE_RATE_LIMIT_PER_IP=10**6,
                               GATE_BREAKER_FAILURES=10**6), provider_apis(lambda: LifecycleMachine.world):
            run_state_machine_as_test(LifecycleMachine, settings=settings(
                max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
            ))
    finally:
        print("lifecycle: reached", dict(sorted(REACHED.items())))
        gate.server.stop()
        LifecycleMachine.world = None


def test_the_lifecycle_keeps_its_invariants(transactional_db):
    """On the suite's database: PostgreSQL in CI (real row locks), SQLite in `make test` without
    services; `.ci/run` runs this file on SQLite too, so both back ends are proved on every push."""
    _run()
