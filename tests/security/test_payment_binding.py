"""Money never turns denied or unapproved details into tickets (issue 13, finding 1).

The attack, through the real pages and webhook routes, for every provider's path: the gate
approves ``good@ok.com``; the attendee starts a payment with provider X and leaves it open;
pays again with the sandbox, which fails (the session is ``rejected`` and editable again);
changes the details to ``evil@bad.com``, which the gate denies; then the first payment
succeeds. The session must not complete for ``evil@bad.com``. Each payment is bound to
the details it was started for, so the money is recorded, the order is flagged for a
refund with the reason, and no ticket is issued.
"""

import json

import pytest
import responses
from django.core import mail
from django.urls import reverse

from checkout.models import CheckoutSession, Status
from payments.models import Payment
from tests.gate.conftest import start_checkout, submit_details
from tests.payments.helpers import (
    EASYPAY_API,
    EASYPAY_SECRET,
    IFTHENPAY_API,
    IFTHENPAY_KEY,
    STRIPE_SECRET,
    checkout_object,
    configure,
    easypay_notification,
    easypay_single,
    ifthenpay_callback,
    post_easypay,
    post_stripe,
    stripe_event,
)
from tests.servers import Reply

pytestmark = pytest.mark.django_db

EP_ID = "0c2b5a0e-5d5e-4f1a-9b0c-1d2e3f4a5b6c"


def only_ok_dot_com(request):
    email = json.loads(request.body)["data"]["object"]["customer"]["email"]
    return Reply(200, {}) if email.endswith("@ok.com") else Reply(403, {"message": "Not on the guest list"})


@pytest.fixture
def every_provider(organization):
    configure(organization, "stripe", secret=STRIPE_SECRET, credentials={"secret_key": "sk_test_tenant"})
    configure(organization, "easypay", secret=EASYPAY_SECRET, credentials={"account_id": "acc", "api_key": "k"})
    configure(organization, "ifthenpay", secret=IFTHENPAY_KEY, credentials={"mb_key": "MBK-1", "mbway_key": "MBW-1"})
    return organization


def _start_stripe(client, session, method):
    responses.post("https://api.stripe.com/v1/checkout/sessions", json={
        "id": "cs_test_bound", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_bound"})
    return client.post(f"/c/{session.public_id}/review/", {"provider": "stripe"})


def _stripe_paid(client, org, session, method):
    obj = {**checkout_object(session), "id": "cs_test_bound"}
    if method == "sepa":  # SEPA Debit: completed unpaid first, the money days later
        post_stripe(client, org.public_id, stripe_event("checkout.session.completed",
                                                        {**obj, "payment_status": "unpaid"}))
        return post_stripe(client, org.public_id, stripe_event("checkout.session.async_payment_succeeded", obj))
    return post_stripe(client, org.public_id, stripe_event("checkout.session.completed", obj))


def _start_easypay(client, session, method):
    kind = {"multibanco": "mb", "mbway": "mbw"}[method]
    responses.post(f"{EASYPAY_API}/single", status=201, json={
        "status": "ok", "id": EP_ID, "method": {"type": kind, "status": "pending", "entity": 21098,
                                                "reference": "702358145"}})
    phone = "912345678" if method == "mbway" else ""
    return client.post(f"/c/{session.public_id}/review/", {"provider": "easypay", "phone": phone})


def _easypay_paid(client, org, session, method):
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, value=session.amount_total / 100))
    return post_easypay(client, org.public_id, easypay_notification(EP_ID))


def _start_ifthenpay(client, session, method):
    if method == "mbway":
        responses.post(f"{IFTHENPAY_API}/spg/payment/mbway", json={
            "Amount": "50.00", "Message": "Pending", "OrderId": "x", "RequestId": "REQ-bound", "Status": "000"})
        return client.post(f"/c/{session.public_id}/review/", {"provider": "ifthenpay", "phone": "912345678"})
    responses.post(f"{IFTHENPAY_API}/multibanco/reference/init", json={
        "Amount": "50.00", "Entity": "12345", "ExpiryDate": "25-11-2026", "Message": "Success", "OrderId": "x",
        "Reference": "999888777", "RequestId": "REQ-bound", "Status": "0"})
    return client.post(f"/c/{session.public_id}/review/", {"provider": "ifthenpay"})


def _ifthenpay_paid(client, org, session, method):
    return ifthenpay_callback(client, org.public_id, request_id="REQ-bound",
                              amount=f"{session.amount_total / 100:.2f}")


def _start_sandbox(client, session, method):
    return client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})


def _sandbox_paid(client, org, session, method):
    """The first sandbox payment's own page, "Simulate success", then the return page."""
    first = Payment.objects.filter(session=session, provider="sandbox").order_by("id").first()
    back = client.post(reverse("payments:sandbox_page", args=[first.public_id]), {"outcome": "success"})["Location"]
    return client.get(back)


PATHS = {
    ("stripe", "card"): (_start_stripe, _stripe_paid),
    ("stripe", "sepa"): (_start_stripe, _stripe_paid),
    ("easypay", "multibanco"): (_start_easypay, _easypay_paid),
    ("easypay", "mbway"): (_start_easypay, _easypay_paid),
    ("ifthenpay", "multibanco"): (_start_ifthenpay, _ifthenpay_paid),
    ("ifthenpay", "mbway"): (_start_ifthenpay, _ifthenpay_paid),
    ("sandbox", "sandbox"): (_start_sandbox, _sandbox_paid),
}


def _fail_a_sandbox_payment(client, session):
    sandbox_page = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})["Location"]
    back = client.post(sandbox_page, {"outcome": "failure"})["Location"]
    client.get(back)
    session.refresh_from_db()
    assert session.status == Status.REJECTED


def _fail_a_second_payment(client, org, session, first_provider):
    """Another provider's payment fails: the session is rejected, its details editable."""
    if first_provider != "sandbox":
        return _fail_a_sandbox_payment(client, session)
    _start_stripe(client, session, "card")
    obj = {**checkout_object(session, payment_status="unpaid"), "id": "cs_test_bound"}
    post_stripe(client, org.public_id, stripe_event("checkout.session.async_payment_failed", obj))
    session.refresh_from_db()
    assert session.status == Status.REJECTED


@responses.activate
@pytest.mark.parametrize(("provider", "method"), list(PATHS))
def test_a_payment_started_for_approved_details_issues_nothing_once_the_details_were_denied(
        client, every_provider, event, gate, gate_server, provider, method, django_capture_on_commit_callbacks):
    responses.add_passthru("http://127.0.0.1")  # the gate is a real local server
    start, pay = PATHS[(provider, method)]
    gate_server(only_ok_dot_com)
    session = start_checkout(client, event)
    assert submit_details(client, session, email="good@ok.com").status_code == 302  # approved

    assert start(client, session, method).status_code == 302  # the first payment, left open
    bound = Payment.objects.filter(session=session).get()
    _fail_a_second_payment(client, every_provider, session, provider)

    denied = submit_details(client, session, email="evil@bad.com")
    assert denied.status_code == 200 and "Not on the guest list" in denied.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        assert pay(client, every_provider, session, method).status_code in (200, 302)

    session = CheckoutSession.objects.get(pk=session.pk)
    assert session.customer_email == "evil@bad.com"
    assert session.tickets.count() == 0
    assert session.status == Status.PAID and session.amount_paid == session.amount_total  # the money is recorded
    assert "refund needed" in session.needs_attention and "changed after the payment started" in session.needs_attention
    bound.refresh_from_db()
    assert bound.status == Payment.Status.SUCCEEDED
    assert any("needs your attention" in m.subject for m in mail.outbox)
    assert not any("Your tickets" in m.subject for m in mail.outbox)


@responses.activate
def test_details_changed_back_without_a_new_approval_still_issue_nothing(client, every_provider, event, gate,
                                                                        gate_server):
    """evil, denied, then good again: the details match the payment's, but the gate's
    approval is gone until it is asked again, so the money is flagged, not ticketed."""
    responses.add_passthru("http://127.0.0.1")
    gate_server(only_ok_dot_com)
    session = start_checkout(client, event)
    submit_details(client, session, email="good@ok.com")
    _start_stripe(client, session, "card")
    _fail_a_sandbox_payment(client, session)
    submit_details(client, session, email="evil@bad.com")
    session.refresh_from_db()
    session.customer_email = "good@ok.com"  # as a save without the gate would leave it
    session.save(update_fields=["customer_email"])

    _stripe_paid(client, every_provider, session, "card")
    session.refresh_from_db()
    assert session.tickets.count() == 0 and "not approved" in session.needs_attention


@responses.activate
def test_the_payment_that_was_approved_still_completes_the_order(client, every_provider, event, gate, gate_server):
    """The binding refuses nothing legitimate: approved, paid, completed."""
    responses.add_passthru("http://127.0.0.1")
    gate_server(only_ok_dot_com)
    session = start_checkout(client, event)
    submit_details(client, session, email="good@ok.com")
    _start_stripe(client, session, "card")
    assert Payment.objects.get(session=session).approved_fingerprint == session.__class__.objects.get(
        pk=session.pk).gate_approved_fingerprint
    _stripe_paid(client, every_provider, session, "card")
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.tickets.count() == 2 and not session.needs_attention


@responses.activate
def test_a_new_approval_lets_the_newer_payment_complete_and_flags_the_older(client, every_provider, event, gate,
                                                                            gate_server):
    """Details changed to another approved attendee and paid again: the newer payment
    completes; the older payment's money, bound to the old details, is flagged for refund."""
    responses.add_passthru("http://127.0.0.1")
    gate_server(only_ok_dot_com)
    session = start_checkout(client, event)
    submit_details(client, session, email="good@ok.com")
    _start_ifthenpay(client, session, "multibanco")
    _fail_a_sandbox_payment(client, session)
    assert submit_details(client, session, email="other@ok.com").status_code == 302
    sandbox_page = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})["Location"]
    client.get(client.post(sandbox_page, {"outcome": "success"})["Location"])
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.customer_email == "other@ok.com"

    _ifthenpay_paid(client, every_provider, session, "multibanco")
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and "paid twice" in session.needs_attention
