"""Admin: outbound."""
