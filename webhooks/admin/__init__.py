"""Admin for the webhooks app, one module per capability."""

from . import gate, inbound, outbound  # noqa: F401  (registers the ModelAdmins)
