"""The pre-payment gate in the attendee's checkout, against real gate servers.

Every gate server here verifies our Standard Webhooks signature with ``standardwebhooks``
(see conftest). Each test checks what the attendee sees and whether a payment exists.
"""

import html
import re

import pytest
from django.test import override_settings

from checkout import services
from checkout.models import CheckoutSession, Status, Transition
from payments import services as payments_services
from payments.models import Payment
from tests.conftest import make_event
from tests.servers import Reply, refused_url
from webhooks.models import GateCall, GateSettings, OutboxEvent

from .conftest import start_checkout, submit_details

pytestmark = pytest.mark.django_db


def alert_of(response) -> str:
    match = re.search(r'role="alert"[^>]*>(.*?)</', response.content.decode(), re.S)
    return match.group(1).strip() if match else ""


def pay(client, session):
    return client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})


# --- Allow -------------------------------------------------------------------------------------
def test_an_allowing_gate_sends_the_attendee_on_to_payment(client, event, gate, gate_server):
    server = gate_server(Reply(200, {"ok": True}))
    session = start_checkout(client, event)
    response = submit_details(client, session, email="ana@acme.test", Company="x")
    assert response.status_code == 302 and response["Location"] == f"/c/{session.public_id}/review/"

    assert not server.bad_signatures and len(server.verified) == 1
    sent = server.verified[0]
    assert sent["type"] == "checkout.validate" and sent["id"].startswith("msg_")
    assert server.requests[0].headers["webhook-id"] == sent["id"]
    obj = sent["data"]["object"]
    assert obj["id"] == session.public_id and obj["event"] == event.public_id
    assert obj["customer"] == {"name": "Ana Silva", "email": "ana@acme.test"}
    assert obj["answers"]["T-shirt size"] == "M"
    assert obj["line_items"][0]["quantity"] == 2 and obj["amount_total"] == 5000 and obj["currency"] == "EUR"

    call = GateCall.objects.get()
    assert (call.outcome, call.decision, call.status_code, call.session_id) == ("allowed", "allow", 200, session.pk)
    response = pay(client, session)
    assert Payment.objects.filter(session=session).count() == 1
    assert "Simulate success" in client.get(response["Location"]).content.decode()


def test_an_empty_2xx_body_allows(client, event, gate, gate_server):
    gate_server(Reply(204, b""))
    session = start_checkout(client, event)
    assert submit_details(client, session).status_code == 302


# --- Deny --------------------------------------------------------------------------------------
def test_a_denial_shows_the_gates_message_keeps_the_form_and_starts_no_payment(client, event, gate, gate_server):
    gate_server(Reply(403, {"message": "Only acme.test addresses may buy tickets."}))
    session = start_checkout(client, event)
    response = submit_details(client, session, email="eve@evil.test")
    assert response.status_code == 200
    assert alert_of(response) == "Only acme.test addresses may buy tickets."
    page = response.content.decode()
    assert 'value="eve@evil.test"' in page and 'value="Ana Silva"' in page

    response = pay(client, session)
    assert response["Location"] == f"/c/{session.public_id}/"
    assert not Payment.objects.exists()
    session.refresh_from_db()
    assert session.status == Status.OPEN and session.gate_approved_fingerprint == ""
    transition = Transition.objects.get(session=session, trigger="gate_deny")
    assert "Only acme.test" in transition.detail
    assert OutboxEvent.objects.filter(session=session, type="checkout.session.gate_denied").count() == 1
    call = GateCall.objects.get()
    assert (call.outcome, call.decision, call.status_code) == ("denied", "deny", 403)
    assert call.message == "Only acme.test addresses may buy tickets."


def test_gate_denial_shows_the_message_escaped(client, event, gate, gate_server):
    hostile = '<script>alert("x")</script><b onmouseover="steal()">Denied</b>'
    gate_server(Reply(400, {"message": hostile}))
    session = start_checkout(client, event)
    response = submit_details(client, session)
    page = response.content.decode()
    assert "<script>alert" not in page and "<b onmouseover" not in page
    assert html.escape(hostile, quote=True) in page or "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert html.unescape(alert_of(response)) == hostile
    assert not Payment.objects.exists()


def test_a_denial_without_a_body_shows_the_organizers_denial_message(client, event, gate, gate_server):
    GateSettings.objects.filter(pk=gate.pk).update(denial_message="Members only, sorry.")
    gate_server(Reply(404, b""))
    session = start_checkout(client, event)
    response = submit_details(client, session)
    assert alert_of(response) == "Members only, sorry."
    assert not Payment.objects.exists()


def test_a_denial_with_a_body_that_is_not_json_shows_the_organizers_denial_message(client, event, gate, gate_server):
    gate_server(Reply(422, "<html>nope</html>", headers={"Content-Type": "text/html"}))
    session = start_checkout(client, event)
    assert alert_of(submit_details(client, session)) == gate.denial_message
    assert not Payment.objects.exists()


@override_settings(GATE_MESSAGE_MAX_CHARS=300)
def test_a_long_gate_message_is_capped_and_control_characters_are_dropped(client, event, gate, gate_server):
    gate_server(Reply(403, {"message": "No\u202e\n\tway " + "z" * 5000}))
    session = start_checkout(client, event)
    shown = alert_of(submit_details(client, session))
    assert shown.startswith("No way zzz") and len(shown) == 300 and shown.endswith("…")
    assert len(GateCall.objects.get().message) == 300


# --- Errors and the policy -----------------------------------------------------------------------
HOSTILE = {
    "3xx redirect": lambda other: Reply(302, b"", headers={"Location": other}),
    "408": lambda other: Reply(408, {"message": "slow"}),
    "429": lambda other: Reply(429, {"message": "busy"}),
    "500": lambda other: Reply(500, {"message": "boom"}),
    "invalid JSON": lambda other: Reply(200, "{not json", headers={"Content-Type": "application/json"}),
    "never answers": lambda other: Reply(hang=True),
    "trickles bytes": lambda other: Reply(200, "{" + " " * 200 + "}", trickle=0.05),
    "huge body": lambda other: Reply(200, b"", huge=20_000_000),
}


def _error_case(case, gate_server, gate, tmp_other_url="http://127.0.0.1:9/elsewhere"):
    GateSettings.objects.filter(pk=gate.pk).update(timeout_ms=500)
    gate.refresh_from_db()
    return gate_server(HOSTILE[case](tmp_other_url))


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_failing_gate_blocks_by_default_with_the_error_message(client, event, gate, gate_server, case):
    server = _error_case(case, gate_server, gate)
    session = start_checkout(client, event)
    response = submit_details(client, session)
    assert response.status_code == 200
    assert alert_of(response) == html.escape(gate.error_message, quote=True)
    assert not server.bad_signatures and len(server.requests) == 1
    assert pay(client, session)["Location"] == f"/c/{session.public_id}/"
    assert not Payment.objects.exists()
    call = GateCall.objects.get()
    assert call.outcome == "error" and call.decision == "deny" and call.error
    # An error is not the gate's "no": no gate_denied news is sent.
    assert not OutboxEvent.objects.filter(type="checkout.session.gate_denied").exists()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_failing_gate_with_policy_allow_lets_the_attendee_pay(client, event, gate, gate_server, case):
    GateSettings.objects.filter(pk=gate.pk).update(on_error="allow")
    _error_case(case, gate_server, gate)
    session = start_checkout(client, event)
    response = submit_details(client, session)
    assert response["Location"] == f"/c/{session.public_id}/review/"
    pay(client, session)
    assert Payment.objects.filter(session=session).count() == 1
    call = GateCall.objects.get()
    assert call.outcome == "error" and call.decision == "allow"


def test_the_error_cases_name_what_went_wrong_in_the_call_log(client, event, gate, gate_server):
    expected = {"3xx redirect": "redirect", "408": "HTTP 408", "429": "HTTP 429", "500": "HTTP 500",
                "invalid JSON": "not JSON", "never answers": "timeout", "trickles bytes": "timeout",
                "huge body": "limit"}
    for case, words in expected.items():
        GateSettings.objects.filter(pk=gate.pk).update(consecutive_failures=0)  # keep the breaker out of it
        _error_case(case, gate_server, gate)
        submit_details(client, start_checkout(client, event, qty=1))
        assert words in GateCall.objects.order_by("-id").first().error, case


def test_a_refused_connection_applies_the_policy(client, event, gate):
    GateSettings.objects.filter(pk=gate.pk).update(url=refused_url())
    session = start_checkout(client, event)
    assert alert_of(submit_details(client, session)) == html.escape(gate.error_message, quote=True)
    assert not Payment.objects.exists()
    assert "refused" in GateCall.objects.get().error.lower()

    GateSettings.objects.filter(pk=gate.pk).update(on_error="allow")
    assert submit_details(client, session).status_code == 302


@pytest.mark.parametrize("policy", ["block", "allow"])
def test_a_gate_url_resolving_to_a_private_address_is_not_called(client, event, gate, gate_server, policy):
    server = gate_server(Reply(200, {}))
    # Saved when private targets were allowed (or the name re-pointed since): checked again now.
    GateSettings.objects.filter(pk=gate.pk).update(url=f"https://localhost:{server.port}/hook", on_error=policy)
    session = start_checkout(client, event)
    with override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False):
        response = submit_details(client, session)
    assert server.requests == []
    call = GateCall.objects.get()
    assert call.outcome == "error" and "private" in call.error
    if policy == "block":
        assert alert_of(response) == html.escape(gate.error_message, quote=True)
        assert not Payment.objects.exists()
    else:
        assert response.status_code == 302


# --- No way around the gate ---------------------------------------------------------------------
def test_posting_straight_to_the_review_page_starts_no_payment(client, event, gate, gate_server):
    server = gate_server(Reply(200, {}))
    session = start_checkout(client, event)
    response = pay(client, session)
    assert response["Location"] == f"/c/{session.public_id}/"
    assert not Payment.objects.exists() and server.requests == []


def test_a_replayed_review_post_after_a_denial_starts_no_payment(client, event, gate, gate_server):
    replies = iter([Reply(200, {}), Reply(403, {"message": "Not on the list."})])
    gate_server(lambda req: next(replies))
    session = start_checkout(client, event)
    submit_details(client, session, email="ok@acme.test")
    review_url = f"/c/{session.public_id}/review/"
    assert client.get(review_url).status_code == 200  # approved: the review page opens
    assert alert_of(submit_details(client, session, email="other@evil.test")) == "Not on the list."
    response = client.post(review_url, {"provider": "sandbox"})  # the earlier review form, replayed
    assert response["Location"] == f"/c/{session.public_id}/"
    assert not Payment.objects.exists()


def test_a_second_tab_with_other_details_voids_the_first_tabs_approval(client, event, gate, gate_server):
    def by_domain(req):
        email = req.json()["data"]["object"]["customer"]["email"]
        return Reply(200, {}) if email.endswith("@acme.test") else Reply(403, {"message": "No."})

    gate_server(by_domain)
    session = start_checkout(client, event)
    assert submit_details(client, session, email="ana@acme.test").status_code == 302  # tab 1: approved
    assert alert_of(submit_details(client, session, email="eve@evil.test")) == "No."  # tab 2: denied
    assert pay(client, session)["Location"] == f"/c/{session.public_id}/"  # tab 1 presses Pay
    assert not Payment.objects.exists()


def test_changed_details_after_approval_must_be_approved_again(client, event, gate, gate_server):
    server = gate_server(Reply(200, {}))
    session = start_checkout(client, event)
    submit_details(client, session, email="ana@acme.test")
    services.save_attendee_details(CheckoutSession.objects.get(pk=session.pk), name="Ana Silva",
                                   email="someone.else@acme.test", answers={})
    assert pay(client, session)["Location"] == f"/c/{session.public_id}/"
    assert not Payment.objects.exists()

    assert submit_details(client, session, email="someone.else@acme.test").status_code == 302
    assert [p["data"]["object"]["customer"]["email"] for p in server.verified] == [
        "ana@acme.test", "someone.else@acme.test"]
    pay(client, session)
    assert Payment.objects.count() == 1


def test_the_service_refuses_payment_without_an_approval(event, gate, open_session):
    services.save_attendee_details(open_session, name="Ana", email="ana@acme.test", answers={})
    with pytest.raises(services.GateApprovalRequired):
        payments_services.begin_payment(CheckoutSession.objects.get(pk=open_session.pk), "sandbox")
    assert not Payment.objects.exists()


def test_an_approval_is_not_recorded_for_details_that_changed_while_the_gate_was_asked(event, gate, open_session):
    services.save_attendee_details(open_session, name="Ana", email="ana@acme.test", answers={})
    shown = services.details_fingerprint(CheckoutSession.objects.get(pk=open_session.pk))
    services.save_attendee_details(open_session, name="Ana", email="eve@evil.test", answers={})
    assert services.record_gate_approval(open_session, shown) is False
    assert not services.has_gate_approval(CheckoutSession.objects.get(pk=open_session.pk))


def test_a_session_created_through_the_api_with_an_email_still_needs_the_gate(client, api, event, gate, gate_server):
    server = gate_server(Reply(403, {"message": "No."}))
    tt = event.ticket_types.get()
    created = api.post("/v1/checkout/sessions", {"event": event.public_id, "customer_email": "eve@evil.test",
                                                 "line_items": [{"ticket_type": tt.public_id, "quantity": 1}]},
                       format="json")
    assert created.status_code == 201
    session = CheckoutSession.objects.get(public_id=created.json()["id"])
    assert pay(client, session)["Location"] == f"/c/{session.public_id}/"
    assert not Payment.objects.exists() and server.requests == []


def test_a_free_order_is_gated_too(client, organization):
    event = make_event(organization, price=0, questions=False)
    GateSettings.objects.create(event=event, enabled=True, url=refused_url())
    session = start_checkout(client, event, qty=1)
    response = client.post(f"/c/{session.public_id}/", {"name": "Ana", "email": "ana@example.com"})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    client.post(f"/c/{session.public_id}/review/", {})
    session.refresh_from_db()
    assert session.status == Status.OPEN and not session.tickets.exists()


def test_a_disabled_gate_is_not_called(client, event, gate, gate_server):
    server = gate_server(Reply(403, {"message": "No."}))
    GateSettings.objects.filter(pk=gate.pk).update(enabled=False)
    session = start_checkout(client, event)
    assert submit_details(client, session).status_code == 302
    assert server.requests == [] and not GateCall.objects.exists()


def test_during_a_secret_rotation_receivers_with_the_old_secret_still_verify(client, event, gate, gate_server):
    from standardwebhooks.webhooks import Webhook

    from webhooks.signing import rotate_secret

    server = gate_server(Reply(200, {}))
    old = gate.secret
    new = rotate_secret(gate)
    session = start_checkout(client, event)
    assert submit_details(client, session).status_code == 302  # the server verified with the new secret
    request = server.requests[0]
    Webhook(old).verify(request.body, request.headers)  # and the old one verifies too
    assert new != old and len(request.headers["webhook-signature"].split()) == 2


def test_details_cannot_be_swapped_for_denied_ones_while_an_approved_payment_is_under_way(client, event, gate,
                                                                                       gate_server):
    def by_domain(req):
        email = req.json()["data"]["object"]["customer"]["email"]
        return Reply(200, {}) if email.endswith("@acme.test") else Reply(403, {"message": "No."})

    gate_server(by_domain)
    session = start_checkout(client, event)
    submit_details(client, session, email="ana@acme.test")
    sandbox_page = pay(client, session)["Location"]  # approved; the payment is under way
    response = submit_details(client, session, email="eve@evil.test")  # back to the form, other details
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    session.refresh_from_db()
    assert session.customer_email == "ana@acme.test"  # the approved details stand
    client.get(client.post(sandbox_page, {"outcome": "success"})["Location"])
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.customer_email == "ana@acme.test"
