"""Organizer API routes owned by ``webhooks``: the gate (``gate_api``), endpoints, events
and deliveries (``endpoint_api``)."""

from django.urls import include, path

urlpatterns = [
    path("", include("webhooks.gate_urls")),
    path("", include("webhooks.endpoint_urls")),
]
