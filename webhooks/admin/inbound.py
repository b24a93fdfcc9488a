"""Admin: inbound."""
