"""``Idempotency-Key``: a repeated POST returns the first response and does nothing twice."""

import re
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
    replayed = again.json()
    assert replayed.pop("replay_note").startswith("A replay of the first response")  # the secret is not kept
    assert replayed == {k: v for k, v in first.json().items() if k != "secret"}  # same id
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


# --- Issue 13, finding 4: replays authenticate first and never keep a secret ----------------
WHOLE_SECRET = re.compile(rb"whsec_[A-Za-z0-9+/=_-]{16,}")


def cache_rows() -> list[bytes]:
    """Every answer kept for replays as stored (``IdempotencyRecord.content``, raw), and every
    value of the cache table (the database cache keeps base64 of a pickle, decoded here), so
    a secret in either would be readable bytes."""
    import base64

    from django.db import connection

    with connection.cursor() as cursor:  # read raw: what a database reader sees
        cursor.execute("SELECT content FROM ievents_idempotencyrecord")
        records = [bytes(content) for (content,) in cursor.fetchall()]
        cursor.execute("SELECT value FROM ievents_cache")
        return records + [base64.b64decode(value) for (value,) in cursor.fetchall()]


def test_a_revoked_key_replaying_its_post_gets_401_not_the_stored_answer(api, api_key, organization):
    from django.utils import timezone

    from ievents.models import ApiKey

    assert post(api).status_code == 201
    ApiKey.objects.filter(organization=organization).update(revoked_at=timezone.now())
    again = post(api)
    assert again.status_code == 401 and not again.has_header("Idempotent-Replayed")
    assert b"whsec_" not in again.content and b"we_" not in again.content
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    assert post(stranger).status_code == 401
    assert WebhookEndpoint.objects.count() == 1


def test_the_cache_table_never_holds_a_secret_after_secret_bearing_posts(api, event):
    """Create an endpoint, rotate its secret, create a gate and rotate its secret, each with
    an Idempotency-Key, each twice: the replays answer without the secret, and no row of
    the cache table holds one."""
    created = post(api, key="create")
    endpoint = created.json()
    rotate = f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret"
    rotated = post(api, {}, key="rotate", path=rotate)
    api.put(f"/v1/events/{event.public_id}/gate", {"url": "https://gate.example.com/check"}, format="json")
    gate_rotated = post(api, {}, key="gate-rotate", path=f"/v1/events/{event.public_id}/gate/rotate_secret")
    secrets = [created.json()["secret"], rotated.json()["secret"], gate_rotated.json()["secret"]]
    assert all(secret.startswith("whsec_") for secret in secrets)

    for response, again in ((created, post(api, key="create")), (rotated, post(api, {}, key="rotate", path=rotate)),
                            (gate_rotated, post(api, {}, key="gate-rotate",
                                                path=f"/v1/events/{event.public_id}/gate/rotate_secret"))):
        assert again.status_code == response.status_code and again["Idempotent-Replayed"] == "true"
        assert "secret" not in again.json() and "rotate" in again.json()["replay_note"]
        assert not WHOLE_SECRET.search(again.content)
    assert post(api, {}, key="rotate", path=rotate).json()["previous_secret_expires_at"] == rotated.json()[
        "previous_secret_expires_at"]  # the replay still answers what it can

    rows = cache_rows()
    assert rows, "the replays must have been stored"
    assert not [row for row in rows if WHOLE_SECRET.search(row)]  # masked hints (whsec_…abcd) are fine
    assert not [row for row in rows for secret in secrets if secret.encode() in row]


# --- Issue 26: every key is kept for its whole window, however many a day brings ------------

def test_a_day_of_hundreds_of_keys_keeps_every_answer(api):
    # The database cache kept 300 rows and culled a third when full: past a few hundred keyed
    # requests, a repeat could run again. Each key is now a row of its own until it expires.
    bad = {"url": "not a url"}  # a 400 is an answer too, and the cheapest one to ask for
    first = post(api, key="first")
    for n in range(400):
        assert post(api, bad, key=f"other-{n}").status_code == 400
    again = post(api, key="first")
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert WebhookEndpoint.objects.count() == 1
    assert all(post(api, bad, key=f"other-{n}")["Idempotent-Replayed"] == "true" for n in (0, 150, 399))


def test_a_key_past_its_window_runs_again_and_is_kept_anew(api, settings):
    from datetime import timedelta

    from django.utils import timezone

    from ievents.models import IdempotencyRecord

    first = post(api, key="old")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = post(api, key="old")
    assert again.status_code == 201 and not again.has_header("Idempotent-Replayed")
    assert again.json()["id"] != first.json()["id"] and WebhookEndpoint.objects.count() == 2
    assert post(api, key="old")["Idempotent-Replayed"] == "true"


def test_the_retention_pass_deletes_records_past_their_window_only(api):
    from datetime import timedelta

    from django.utils import timezone

    from ievents.models import IdempotencyRecord
    from ievents.operations import retention

    post(api, key="kept")
    post(api, key="over")
    over = IdempotencyRecord.objects.order_by("expires_at").last()
    IdempotencyRecord.objects.filter(pk=over.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert retention.prune()["Idempotency-Key answers past their window"] == 1
    assert IdempotencyRecord.objects.count() == 1 and IdempotencyRecord.objects.get().expires_at > timezone.now()
