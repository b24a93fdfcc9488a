"""``/v1/events/{id}/gate``: configure, read, rotate and test a gate through the API."""

import pytest
from django.test import override_settings
from standardwebhooks.webhooks import Webhook

from ievents.models import ApiKey
from tests.servers import LocalServer, Reply
from webhooks.models import GateCall, GateSettings

pytestmark = pytest.mark.django_db


def gate_url(event, action=""):
    return f"/v1/events/{event.public_id}/gate" + (f"/{action}" if action else "")


def test_putting_a_gate_creates_it_and_shows_the_secret_only_then(api, event):
    response = api.put(gate_url(event), {"url": "https://gate.example.com/check", "enabled": True,
                                         "timeout_ms": 2000, "on_error": "allow"}, format="json")
    assert response.status_code == 200
    body = response.json()
    gate = GateSettings.objects.get(event=event)
    assert body["secret"] == gate.secret and body["secret"].startswith("whsec_")
    assert (body["url"], body["enabled"], body["timeout_ms"], body["on_error"]) == (
        "https://gate.example.com/check", True, 2000, "allow")
    assert body["secret_hint"] != gate.secret and gate.secret not in body["secret_hint"]

    again = api.put(gate_url(event), {"timeout_ms": 3000}, format="json").json()
    assert "secret" not in again and again["timeout_ms"] == 3000 and again["url"] == "https://gate.example.com/check"
    read = api.get(gate_url(event)).json()
    assert "secret" not in read and gate.secret not in str(read)


def test_the_secret_is_stored_encrypted(api, event):
    from django.db import connection

    api.put(gate_url(event), {"url": "https://gate.example.com/check"}, format="json")
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_gatesettings")
        (stored,) = cursor.fetchone()
    assert stored.startswith("enc1:") and "whsec_" not in stored


@pytest.mark.parametrize("timeout_ms", [0, 499, 10_001, -5])
def test_a_timeout_outside_500_to_10000_ms_is_refused(api, event, timeout_ms):
    response = api.put(gate_url(event), {"url": "https://gate.example.com/", "timeout_ms": timeout_ms}, format="json")
    assert response.status_code == 400 and "timeout_ms" in response.json()["error"]["fields"]
    assert not GateSettings.objects.exists()


@pytest.mark.parametrize("timeout_ms", [500, 10_000])
def test_the_timeout_bounds_are_accepted(api, event, timeout_ms):
    response = api.put(gate_url(event), {"url": "https://gate.example.com/", "timeout_ms": timeout_ms}, format="json")
    assert response.status_code == 200


@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize("url", ["http://gate.example.com/", "https://127.0.0.1/", "https://169.254.169.254/latest",
                                 "https://localhost/", "https://user:pw@gate.example.com/", "ftp://gate.example.com/"])
def test_gate_urls_are_checked_when_saved(api, event, url):
    response = api.put(gate_url(event), {"url": url, "enabled": True}, format="json")
    assert response.status_code == 400 and "url" in response.json()["error"]["fields"]
    assert not GateSettings.objects.exists()


def test_an_enabled_gate_needs_a_url(api, event):
    response = api.put(gate_url(event), {"enabled": True}, format="json")
    assert response.status_code == 400 and "url" in response.json()["error"]["fields"]


def test_a_bad_change_leaves_the_gate_as_it_was(api, event):
    api.put(gate_url(event), {"url": "https://gate.example.com/", "timeout_ms": 2500}, format="json")
    response = api.put(gate_url(event), {"url": "https://other.example.com/", "timeout_ms": 20}, format="json")
    assert response.status_code == 400
    gate = GateSettings.objects.get()
    assert (gate.url, gate.timeout_ms) == ("https://gate.example.com/", 2500)


def test_rotating_returns_a_new_secret_and_both_sign_for_a_while(api, event):
    first = api.put(gate_url(event), {"url": "https://gate.example.com/"}, format="json").json()["secret"]
    response = api.post(gate_url(event, "rotate_secret"))
    assert response.status_code == 200
    second = response.json()["secret"]
    gate = GateSettings.objects.get()
    assert second != first and gate.secret == second and gate.previous_secret == first


def test_a_test_request_makes_one_real_signed_call_and_returns_its_outcome(api, event):
    with LocalServer(Reply(403, {"message": "test says no"})) as server:
        secret = api.put(gate_url(event), {"url": server.url}, format="json").json()["secret"]
        response = api.post(gate_url(event, "test"))
    assert response.status_code == 200
    body = response.json()
    assert (body["outcome"], body["decision"], body["status_code"], body["message"]) == (
        "denied", "deny", 403, "test says no")
    sent = Webhook(secret).verify(server.requests[0].body, server.requests[0].headers)
    assert sent["type"] == "checkout.validate" and sent["test"] is True
    assert sent["data"]["object"]["event"] == event.public_id
    call = GateCall.objects.get()
    assert call.is_test and call.session is None


def test_a_test_request_reports_a_failing_gate(api, event):
    with LocalServer(Reply(hang=True)) as server:
        api.put(gate_url(event), {"url": server.url, "timeout_ms": 500}, format="json")
        body = api.post(gate_url(event, "test")).json()
    assert body["outcome"] == "error" and body["decision"] == "deny" and "timeout" in body["error"]


def test_reading_a_gate_that_does_not_exist_is_a_404(api, event):
    response = api.get(gate_url(event))
    assert response.status_code == 404 and response.json()["error"]["code"] == "gate_not_found"
    assert api.post(gate_url(event, "test")).status_code == 404


def test_another_organizations_gate_is_a_404_and_unchanged(api, other_organization):
    from tests.conftest import make_event

    theirs = make_event(other_organization, name="Theirs")
    GateSettings.objects.create(event=theirs, url="https://theirs.example.com/", enabled=True)
    for response in (api.get(gate_url(theirs)),
                     api.put(gate_url(theirs), {"url": "https://mine.example.com/"}, format="json"),
                     api.post(gate_url(theirs, "rotate_secret")),
                     api.post(gate_url(theirs, "test"))):
        assert response.status_code == 404
    assert GateSettings.objects.get(event=theirs).url == "https://theirs.example.com/"


def test_without_an_api_key_the_gate_api_is_401(client, event):
    assert client.get(gate_url(event)).status_code == 401


def test_a_revoked_key_cannot_read_the_gate(api, organization, event):
    from django.utils import timezone

    ApiKey.objects.filter(organization=organization).update(revoked_at=timezone.now())
    assert api.get(gate_url(event)).status_code == 401
