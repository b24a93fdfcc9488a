"""Inbound provider webhook routes: ``/api/webhooks/{provider}/{org}``."""

urlpatterns: list = []
