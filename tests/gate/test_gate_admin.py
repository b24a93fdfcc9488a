"""The gate in the admin: inline settings (secret masked), actions, and the read-only call log."""

import pytest
from django.test import override_settings

from tests.conftest import event_change_form, make_event
from tests.servers import LocalServer, Reply
from webhooks.models import GateCall, GateSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer(client, organizer):
    """The shared organizer, logged in."""
    client.force_login(organizer)
    return organizer


def event_form(event, **gate):
    """The event change form as the browser posts it, with the gate inline."""
    data = {
        **event_change_form(event),
        "gate-TOTAL_FORMS": 1, "gate-INITIAL_FORMS": 1 if GateSettings.objects.filter(event=event).exists() else 0,
        "gate-0-event": event.pk,
        "gate-0-url": "https://gate.example.com/check", "gate-0-timeout_ms": 3000, "gate-0-on_error": "block",
        "gate-0-denial_message": "No.", "gate-0-error_message": "Try later.", "gate-0-enabled": "on",
    }
    existing = GateSettings.objects.filter(event=event).first()
    if existing:
        data["gate-0-id"] = existing.pk
    data.update({f"gate-0-{k}": v for k, v in gate.items()})
    return {k: v for k, v in data.items() if v is not None}


def test_the_gate_is_edited_inline_on_the_event(client, organizer, event):
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", event_form(event, timeout_ms=2500))
    gate = GateSettings.objects.get(event=event)
    assert (gate.url, gate.timeout_ms, gate.enabled) == ("https://gate.example.com/check", 2500, True)
    # A new gate's secret is shown once, in a box to copy, before going on.
    assert response.status_code == 200 and [s for _, s in response.context["secrets"]] == [gate.secret]


def test_the_secret_is_shown_masked_never_in_full(client, organizer, event):
    gate = GateSettings.objects.create(event=event, url="https://gate.example.com/")
    page = client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()
    assert "pre-payment gate" in page.lower()
    assert gate.secret not in page and gate.secret[:6] + "…" + gate.secret[-4:] in page


@pytest.mark.parametrize("change, field", [({"timeout_ms": 100}, "timeout_ms"), ({"timeout_ms": 20000}, "timeout_ms"),
                                           ({"url": "https://169.254.169.254/"}, "url"),
                                           ({"url": "http://gate.example.com/"}, "url"),
                                           ({"url": ""}, "url")])
@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
def test_bad_gate_settings_are_refused_with_the_reason(client, organizer, event, change, field):
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", event_form(event, **change))
    assert response.status_code == 200  # the form again, with errors
    errors = response.context["inline_admin_formsets"][-1].formset.errors[0]
    assert field in errors
    assert not GateSettings.objects.filter(event=event).exists()


def test_the_test_action_makes_a_real_call_and_shows_its_outcome(client, organizer, event):
    with LocalServer(Reply(403, {"message": "<i>not today</i>"})) as server:
        GateSettings.objects.create(event=event, url=server.url)
        response = client.post("/admin/ievents/event/", {"action": "send_gate_test_request",
                                                         "_selected_action": [event.pk]}, follow=True)
    page = response.content.decode()
    assert "denied (HTTP 403" in page and "&lt;i&gt;not today&lt;/i&gt;" in page and "<i>not today" not in page
    assert len(server.requests) == 1
    assert GateCall.objects.get().is_test


def test_the_rotate_action_shows_the_new_secret_once(client, organizer, event):
    gate = GateSettings.objects.create(event=event, url="https://gate.example.com/")
    old = gate.secret
    page = client.post("/admin/ievents/event/", {"action": "rotate_gate_secret", "_selected_action": [event.pk]},
                       follow=True).content.decode()
    gate.refresh_from_db()
    assert gate.secret != old and gate.previous_secret == old and gate.secret in page
    assert gate.secret not in client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()


def test_actions_cannot_reach_another_organizations_event(client, organizer, other_organization):
    theirs = make_event(other_organization, name="Theirs")
    gate = GateSettings.objects.create(event=theirs, url="https://theirs.example.com/")
    old = gate.secret
    client.post("/admin/ievents/event/", {"action": "rotate_gate_secret", "_selected_action": [theirs.pk]}, follow=True)
    gate.refresh_from_db()
    assert gate.secret == old


def test_the_call_log_lists_only_own_calls_with_filters_and_is_read_only(client, organizer, event, other_organization):
    theirs = make_event(other_organization, name="Theirs")
    GateCall.objects.create(event=event, outcome="denied", decision="deny", status_code=403, message="mine-denied")
    GateCall.objects.create(event=event, outcome="allowed", decision="allow", status_code=200, message="mine-allowed")
    GateCall.objects.create(event=theirs, outcome="denied", decision="deny", status_code=403, message="theirs-denied")
    page = client.get("/admin/webhooks/gatecall/").content.decode()
    assert "mine-denied" in page and "mine-allowed" in page and "theirs-denied" not in page
    assert "Theirs" not in page  # not even in the event filter
    filtered = client.get("/admin/webhooks/gatecall/?outcome__exact=denied").content.decode()
    assert "mine-denied" in filtered and "mine-allowed" not in filtered
    by_event = client.get(f"/admin/webhooks/gatecall/?event__id__exact={event.pk}").content.decode()
    assert "mine-denied" in by_event
    dated = client.get("/admin/webhooks/gatecall/").content.decode()
    assert "Any date" in dated and "Today" in dated  # the date filter
    call = GateCall.objects.filter(event=event).first()
    assert client.get("/admin/webhooks/gatecall/add/").status_code == 403
    assert client.post(f"/admin/webhooks/gatecall/{call.pk}/delete/", {"post": "yes"}).status_code == 403
    assert GateCall.objects.count() == 3
    theirs_call = GateCall.objects.get(event=theirs)
    assert client.get(f"/admin/webhooks/gatecall/{theirs_call.pk}/change/").status_code in (302, 404)
