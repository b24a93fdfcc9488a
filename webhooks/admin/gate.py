"""Admin: gate."""
