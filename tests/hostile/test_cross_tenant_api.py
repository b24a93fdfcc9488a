"""An API key of org A, probing every object of org B through ``/v1``.

Every read, change, delete, retry, rotate, test and expire of B's ids is a 404 exactly like
an id that never existed (so the answer says nothing about B), changes nothing, and no
list or filter shows B's rows. Creating a session for B's event or ticket type fails.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from .conftest import state_fingerprint

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_a(mine):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {mine.api_key}")
    return client


def probes(t) -> list[tuple[str, str, dict | None]]:
    session = t.stripe_session
    return [
        ("get", f"/v1/events/{t.event.public_id}", None),
        ("patch", f"/v1/events/{t.event.public_id}", {"name": "Hijacked"}),
        ("get", f"/v1/events/{t.event.public_id}/gate", None),
        ("put", f"/v1/events/{t.event.public_id}/gate", {"url": "https://evil.example/gate", "enabled": True}),
        ("post", f"/v1/events/{t.event.public_id}/gate/rotate_secret", None),
        ("post", f"/v1/events/{t.event.public_id}/gate/test", None),
        ("get", f"/v1/checkout/sessions/{session.public_id}", None),
        ("post", f"/v1/checkout/sessions/{session.public_id}/expire", None),
        ("get", f"/v1/webhook_endpoints/{t.endpoint.public_id}", None),
        ("patch", f"/v1/webhook_endpoints/{t.endpoint.public_id}", {"url": "https://evil.example/hook"}),
        ("delete", f"/v1/webhook_endpoints/{t.endpoint.public_id}", None),
        ("post", f"/v1/webhook_endpoints/{t.endpoint.public_id}/rotate_secret", None),
        ("post", f"/v1/webhook_endpoints/{t.endpoint.public_id}/test", None),
        ("get", f"/v1/webhook_events/{t.outbox_event.public_id}", None),
        ("get", f"/v1/webhook_events/{t.outbox_event.public_id}/deliveries", None),
        ("post", f"/v1/deliveries/{t.delivery.public_id}/retry", None),
    ]


def _call(client, method, path, body):
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


def _secrets(t):
    from webhooks.models import GateSettings, WebhookEndpoint

    return WebhookEndpoint.objects.get(pk=t.endpoint.pk).secret, GateSettings.objects.get(pk=t.gate.pk).secret


def test_every_operation_on_another_organizations_ids_is_the_same_404_as_an_unknown_id(api_a, mine, theirs):
    from webhooks.models import Delivery

    Delivery.objects.filter(pk=theirs.delivery.pk).update(status=Delivery.Status.FAILED)  # retryable, were it mine
    before, secrets_before = state_fingerprint(), _secrets(theirs)
    for (method, path, body), (_, unknown_path, _) in zip(probes(theirs), probes_with_unknown_ids(theirs), strict=True):
        response = _call(api_a, method, path, body)
        unknown = _call(api_a, method, unknown_path, body)
        assert response.status_code == 404, (method, path, response.status_code, response.content[:200])
        assert response.json() == unknown.json(), (method, path)  # indistinguishable from "no such id"
    assert state_fingerprint() == before and _secrets(theirs) == secrets_before


def probes_with_unknown_ids(t):
    ids = [t.event.public_id, t.stripe_session.public_id, t.endpoint.public_id, t.outbox_event.public_id,
           t.delivery.public_id]
    result = []
    for method, path, body in probes(t):
        for public_id in ids:
            path = path.replace(public_id, public_id[:3] + "doesnotexist000000000")
        result.append((method, path, body))
    return result


def test_the_same_operations_on_my_own_ids_are_not_404(api_a, mine):
    """The control: the probes above reach real code for the key's own objects."""
    from webhooks.models import Delivery

    Delivery.objects.filter(pk=mine.delivery.pk).update(status=Delivery.Status.FAILED)
    for method, path, body in probes(mine):
        if method == "delete":
            continue  # keep the endpoint for the probes after it
        response = _call(api_a, method, path, body)
        assert response.status_code != 404, (method, path, response.content[:200])
        assert response.status_code < 500


@pytest.mark.parametrize("path", ["/v1/events", "/v1/checkout/sessions", "/v1/webhook_endpoints", "/v1/webhook_events",
                                  "/v1/webhook_events?session={session}", "/v1/webhook_events?type=checkout.session.canceled"])
def test_no_list_or_filter_shows_another_organizations_rows(api_a, mine, theirs, path):
    session = theirs.stripe_session
    response = api_a.get(path.format(session=session.public_id))
    assert response.status_code == 200
    body = response.content.decode()
    for their_id in (theirs.event.public_id, session.public_id, theirs.endpoint.public_id,
                     theirs.outbox_event.public_id, theirs.delivery.public_id, theirs.org.public_id):
        assert their_id not in body
    if "?" not in path:
        assert response.json()["data"], "the control: my own rows are listed"


def test_a_session_cannot_be_opened_for_another_organizations_event_or_ticket_type(api_a, mine, theirs):
    before = state_fingerprint()
    response = api_a.post("/v1/checkout/sessions", {"event": theirs.event.public_id, "line_items": [
        {"ticket_type": theirs.ticket_type.public_id, "quantity": 1}]}, format="json")
    assert response.status_code == 404
    response = api_a.post("/v1/checkout/sessions", {"event": mine.event.public_id, "line_items": [
        {"ticket_type": theirs.ticket_type.public_id, "quantity": 1}]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_ticket_type"
    assert state_fingerprint() == before


@pytest.mark.parametrize("path", ["/v1/payments", "/v1/integrations", "/v1/api_keys", "/v1/inbound_webhooks",
                                  "/v1/gate_calls", "/v1/questions", "/v1/organizations"])
def test_objects_without_an_api_are_not_reachable_through_it(api_a, theirs, path):
    assert api_a.get(path).status_code == 404


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Bearer iev_00000000_nope", "Basic abc", "bearer {key}",
                                    "Bearer {key}\x00", "Bearer {key} extra"])
def test_a_missing_malformed_or_revoked_key_is_401_and_shows_nothing(mine, header):
    from django.utils import timezone

    from ievents.models import ApiKey

    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header.format(key=mine.api_key))
    response = client.get("/v1/events")
    assert response.status_code == 401 and mine.event.public_id not in response.content.decode()
    ApiKey.objects.filter(organization=mine.org).update(revoked_at=timezone.now())
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {mine.api_key}")
    assert revoked.get("/v1/events").status_code == 401
