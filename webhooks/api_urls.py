"""Organizer API routes owned by ``webhooks``: the gate, endpoints, events, deliveries."""

urlpatterns: list = []
