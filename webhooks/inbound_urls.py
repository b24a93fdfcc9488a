"""Inbound provider webhook routes: ``/api/webhooks/{provider}/{org}`` (see ``webhooks.inbound``)."""

from django.urls import path

from . import inbound

app_name = "inbound"

urlpatterns = [
    path("<str:provider>/<str:org>", inbound.provider_webhook, name="provider_webhook"),
]
