"""``Idempotency-Key``: a repeated POST returns the first response and does nothing twice."""

import threading

import pytest
from rest_framework.test import APIClient

from checkout.models import CheckoutSession
from tests.servers import LocalServer, Reply
from webhooks.models import Delivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

BODY = {"url": "https://hooks.example.com/a", "enabled_events": ["*"]}


def post(api, body=BODY, key="key-1", path="/v1/webhook_endpoints"):
    return api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_repeated_create_returns_the_first_response_and_creates_one_endpoint(api):
    first = post(api)
    again = post(api)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # same id, same secret
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert WebhookEndpoint.objects.count() == 1


def test_a_repeated_checkout_session_create_holds_the_tickets_once(api, event, ticket_type):
    body = {"event": event.public_id, "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 3}]}
    first = post(api, body, path="/v1/checkout/sessions")
    again = post(api, body, path="/v1/checkout/sessions")
    assert first.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert CheckoutSession.objects.count() == 1
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 3


def test_the_same_key_with_a_different_body_is_refused(api):
    post(api)
    response = post(api, BODY | {"url": "https://hooks.example.com/b"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "idempotency_key_reused"
    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == ["https://hooks.example.com/a"]


def test_the_same_key_on_another_route_is_refused(api):
    endpoint = post(api).json()
    response = post(api, {}, path=f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret")
    assert response.status_code == 422
    assert WebhookEndpoint.objects.get().previous_secret == ""


def test_different_keys_are_different_requests(api):
    post(api, key="a")
    post(api, key="b")
    assert WebhookEndpoint.objects.count() == 2


def test_a_refused_request_is_answered_the_same_way_again(api):
    bad = BODY | {"enabled_events": ["nope"]}
    first = post(api, bad)
    again = post(api, bad)
    assert first.status_code == again.status_code == 400 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


def test_keys_are_scoped_to_the_api_key_so_another_organization_gets_its_own_answer(api, other_organization):
    from ievents.models import ApiKey

    mine = post(api).json()
    rival = APIClient()
    rival.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(other_organization)[1]}")
    theirs = post(rival)
    assert theirs.status_code == 201 and theirs.json()["id"] != mine["id"]
    assert mine["secret"] not in theirs.content.decode()
    assert WebhookEndpoint.objects.filter(organization=other_organization).count() == 1


def test_an_unauthenticated_request_is_not_remembered(api, client):
    response = client.post("/v1/webhook_endpoints", BODY, content_type="application/json",
                           HTTP_AUTHORIZATION="Bearer wrong", HTTP_IDEMPOTENCY_KEY="key-1")
    assert response.status_code == 401
    assert post(api).status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "é"])
def test_a_malformed_key_is_refused(api, key):
    response = post(api, key=key)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not WebhookEndpoint.objects.exists()


def test_requests_without_a_key_are_not_deduplicated(api):
    api.post("/v1/webhook_endpoints", BODY, format="json")
    api.post("/v1/webhook_endpoints", BODY, format="json")
    assert WebhookEndpoint.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_repeat_while_the_first_is_still_running_is_told_to_wait(api):
    endpoint = post(api, key="create").json()
    with LocalServer(Reply(200, delay=1.0)) as server:
        WebhookEndpoint.objects.update(url=server.url)
        results = {}
        first = threading.Thread(target=lambda: results.setdefault(
            "first", post(api, {}, key="test-1", path=f"/v1/webhook_endpoints/{endpoint['id']}/test")))
        first.start()
        while not server.requests:  # the first request is now waiting on the slow receiver
            threading.Event().wait(0.01)
        second = post(api, {}, key="test-1", path=f"/v1/webhook_endpoints/{endpoint['id']}/test")
        first.join(10)
    assert second.status_code == 409 and second.json()["error"]["code"] == "idempotency_key_in_use"
    assert results["first"].status_code == 200
    assert len(server.requests) == 1 and Delivery.objects.count() == 1
