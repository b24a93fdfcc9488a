"""Fixtures for outbound delivery: a subscribed endpoint and a way to make events."""

import pytest

from tests.servers import LocalServer, Reply


@pytest.fixture
def receiver():
    with LocalServer(Reply(200, {"received": True})) as server:
        yield server


@pytest.fixture
def endpoint_for(organization):
    from webhooks.models import WebhookEndpoint

    def make(url, events=("*",), **fields):
        return WebhookEndpoint.objects.create(organization=organization, url=url, enabled_events=list(events), **fields)

    return make


@pytest.fixture
def new_session(event, ticket_type):
    """Open a checkout session; its ``checkout.session.created`` event goes to every
    subscribed endpoint (and to ``webhook_url`` when given)."""
    from checkout import services

    def make(**fields):
        return services.create_session(event, [services.Item(ticket_type, 1)], **fields)

    return make
