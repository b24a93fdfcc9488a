"""Refunds through each provider's refund API (stand-ins with the documented request and
response bodies), refunds made outside, and the provider's later news of them."""

import json
from urllib.parse import parse_qs

import pytest
import responses

from checkout.models import Status, Ticket, Transition
from checkout.order_actions import record_refunded
from payments import refunds
from payments.models import Payment, Refund
from webhooks.models import InboundWebhook, OutboxEvent

from ..conftest import make_organizer
from ..payments.helpers import (
    EASYPAY_API,
    EASYPAY_SECRET,
    IFTHENPAY_API,
    STRIPE_SECRET,
    charge_object,
    configure,
    post_easypay,
    post_stripe,
    stripe_event,
)
from .helpers import paid_order

pytestmark = pytest.mark.django_db
STRIPE_API = "https://api.stripe.com"
EP_PAYMENT = "5eca7446-14e9-47bb-aabb-5ee237159b8b"
EP_CAPTURE = "0c7cf1d4-6fd2-4e0b-9f52-7a3c2f3a9d11"
EP_REFUND = "a5d3c2b1-1111-4c6e-9e0f-22e6c0a1b2c3"


def _history(session) -> list[tuple[str, str, str]]:
    return list(Transition.objects.filter(session=session).values_list("trigger", "source", "detail"))[-2:]


# --- Stripe: POST /v1/refunds ------------------------------------------------------------------
@pytest.fixture
def stripe_order(organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET, credentials={"secret_key": "sk_test_tenant"})
    session, _ = paid_order(event, provider="stripe", reference="cs_test_paid")
    return session


def _stripe_refunds_api(refund_ids=("re_1", "re_2"), status="succeeded"):
    responses.get(f"{STRIPE_API}/v1/checkout/sessions/cs_test_paid", json={
        "id": "cs_test_paid", "object": "checkout.session", "payment_intent": "pi_paid", "payment_status": "paid"})
    for refund_id in refund_ids:
        responses.post(f"{STRIPE_API}/v1/refunds", json={
            "id": refund_id, "object": "refund", "amount": 2500, "currency": "eur", "payment_intent": "pi_paid",
            "charge": "ch_paid", "status": status})


@responses.activate
def test_stripe_refunds_half_then_the_rest_through_the_refunds_api(stripe_order, organizer):
    _stripe_refunds_api()
    first = refunds.refund(stripe_order, 2500, by=organizer, note="can't come", key="click-1")
    sent = responses.calls[1].request
    assert sent.url == f"{STRIPE_API}/v1/refunds"
    form = {k: v[0] for k, v in parse_qs(sent.body).items()}
    assert (form["payment_intent"], form["amount"]) == ("pi_paid", "2500")
    assert sent.headers["Idempotency-Key"] == "ievents-refund-" + first.public_id
    assert sent.headers["Authorization"] == "Bearer sk_test_tenant"
    stripe_order.refresh_from_db()
    assert (stripe_order.status, stripe_order.amount_refunded) == (Status.PARTIALLY_REFUNDED, 2500)
    assert (first.provider_reference, first.status, first.by) == ("re_1", "succeeded", organizer)
    assert _history(stripe_order)[-1] == ("partial_refund", "admin", "Refunded €25.00 by ana: can't come")

    refunds.refund(stripe_order, 2500, by=organizer, note="", key="click-2")
    stripe_order.refresh_from_db()
    assert (stripe_order.status, stripe_order.amount_refunded) == (Status.REFUNDED, 5000)
    assert not Ticket.objects.filter(session=stripe_order, voided_at__isnull=True).exists()
    assert Payment.objects.get(session=stripe_order).status == Payment.Status.REFUNDED
    announced = list(OutboxEvent.objects.filter(session=stripe_order, type="checkout.session.refunded")
                     .order_by("id").values_list("payload", flat=True))
    assert [(e["data"]["object"]["status"], e["data"]["object"]["amount_refunded"]) for e in announced] == [
        ("partially_refunded", 2500), ("refunded", 5000)]


@responses.activate
def test_stripes_later_refund_news_finds_the_refund_recorded_and_changes_nothing(client, stripe_order, organizer):
    _stripe_refunds_api()
    refunds.refund(stripe_order, 2500, by=organizer, key="click-1")
    before = (Transition.objects.count(), OutboxEvent.objects.count())
    # Stripe tells us twice: the charge now shows 25.00 refunded, and the refund was created.
    charge = {**charge_object(stripe_order, refunded=2500), "id": "ch_paid"}
    responses.get(f"{STRIPE_API}/v1/charges/ch_paid", json=charge)
    for news in (stripe_event("charge.refunded", charge),
                 stripe_event("refund.created", {"id": "re_1", "object": "refund", "charge": "ch_paid", "amount": 2500})):
        response = post_stripe(client, stripe_order.organization.public_id, news)
        assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    stripe_order.refresh_from_db()
    assert (stripe_order.status, stripe_order.amount_refunded) == (Status.PARTIALLY_REFUNDED, 2500)
    assert (Transition.objects.count(), OutboxEvent.objects.count()) == before
    # And after the rest: the news of the full refund changes nothing either.
    refunds.refund(stripe_order, 2500, by=organizer, key="click-2")
    response = post_stripe(client, stripe_order.organization.public_id,
                           stripe_event("charge.refunded", {**charge, "amount_refunded": 5000}))
    assert response.json()["outcome"] == "ignored"
    assert Transition.objects.filter(session=stripe_order, trigger__in=["refund", "partial_refund"]).count() == 2


@responses.activate
def test_a_refund_made_in_stripes_dashboard_is_still_applied(client, stripe_order):
    """The hook ignores only refunds we recorded: one made elsewhere still moves the order."""
    response = post_stripe(client, stripe_order.organization.public_id,
                           stripe_event("charge.refunded", charge_object(stripe_order, refunded=1000)))
    assert response.json()["outcome"] == "processed"
    stripe_order.refresh_from_db()
    assert (stripe_order.status, stripe_order.amount_refunded) == (Status.PARTIALLY_REFUNDED, 1000)
    assert refunds.refundable_amount(stripe_order) == 4000


@responses.activate
def test_refunds_from_the_admin_and_from_stripes_dashboard_add_up(client, stripe_order, organizer):
    """One rule for ``amount_refunded`` (``checkout.order_actions.record_refunded``): ours add
    their amount, the provider's news brings its total, and the total never goes down."""
    _stripe_refunds_api()
    refunds.refund(stripe_order, 2500, by=organizer, key="click-1")
    charge = charge_object(stripe_order, refunded=4000)  # 15.00 more, refunded in the dashboard
    assert post_stripe(client, stripe_order.organization.public_id,
                       stripe_event("charge.refunded", charge)).json()["outcome"] == "processed"
    stripe_order.refresh_from_db()
    assert (stripe_order.status, stripe_order.amount_refunded) == (Status.PARTIALLY_REFUNDED, 4000)
    refunds.refund(stripe_order, 1000, by=organizer, key="click-2")
    stripe_order.refresh_from_db()
    assert (stripe_order.status, stripe_order.amount_refunded) == (Status.REFUNDED, 5000)


def test_the_amount_refunded_never_goes_down_nor_past_what_was_paid(stripe_order):
    record_refunded(stripe_order, 3000)
    record_refunded(stripe_order, 1000)  # older news
    stripe_order.refresh_from_db()
    assert stripe_order.amount_refunded == 3000
    record_refunded(stripe_order, 9000)
    stripe_order.refresh_from_db()
    assert stripe_order.amount_refunded == stripe_order.amount_paid == 5000


@responses.activate
@pytest.mark.parametrize("status, body", [
    (402, {"error": {"type": "invalid_request_error", "message": "Charge ch_paid has already been refunded."}}),
    (500, {"error": {"type": "api_error", "message": "boom"}}),
])
def test_stripe_refusing_the_refund_records_nothing(stripe_order, organizer, status, body):
    responses.get(f"{STRIPE_API}/v1/checkout/sessions/cs_test_paid", json={"id": "cs_test_paid",
                                                                          "payment_intent": "pi_paid"})
    responses.post(f"{STRIPE_API}/v1/refunds", status=status, json=body)
    with pytest.raises(refunds.RefundFailed, match="did not refund"):
        refunds.refund(stripe_order, 2500, by=organizer, key="click-1")
    stripe_order.refresh_from_db()
    assert (stripe_order.status, stripe_order.amount_refunded) == (Status.COMPLETED, 0)
    assert not Refund.objects.exists()


# --- Rules every refund keeps ---------------------------------------------------------------------
@responses.activate
def test_more_than_is_left_is_refused_before_the_provider_is_asked(stripe_order, organizer):
    _stripe_refunds_api(refund_ids=["re_1"])
    refunds.refund(stripe_order, 3000, by=organizer, key="click-1")
    calls = len(responses.calls)
    for amount in (2001, 0, -5):
        with pytest.raises(refunds.RefundRefused):
            refunds.refund(stripe_order, amount, by=organizer, key=f"click-{amount}")
    assert len(responses.calls) == calls
    stripe_order.refresh_from_db()
    assert stripe_order.amount_refunded == 3000


@responses.activate
def test_the_same_click_twice_refunds_once(stripe_order, organizer):
    _stripe_refunds_api()
    first = refunds.refund(stripe_order, 2500, by=organizer, key="one-click")
    again = refunds.refund(stripe_order, 2500, by=organizer, key="one-click")
    assert again.pk == first.pk
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 1
    stripe_order.refresh_from_db()
    assert stripe_order.amount_refunded == 2500


def test_an_unpaid_order_has_nothing_to_refund(organization, event, organizer):
    from ..payments.helpers import pending_session

    session, _ = pending_session(event, provider="sandbox", reference="pay_x")
    with pytest.raises(refunds.RefundRefused, match="nothing left"):
        refunds.refund(session, 100, by=organizer, key="k")


def test_voided_seats_go_back_on_sale_only_when_asked(organization, event, organizer):
    ticket_type = event.ticket_types.get()
    session, _ = paid_order(event, provider="sandbox", reference="pay_sbx", quantity=3)
    first, second, _third = Ticket.objects.filter(session=session)
    sold = ticket_type.__class__.objects.get(pk=ticket_type.pk).reserved
    refunds.refund(session, 2500, by=organizer, key="a", tickets=[first.pk], restock=False)
    assert ticket_type.__class__.objects.get(pk=ticket_type.pk).reserved == sold
    refunds.refund(session, 2500, by=organizer, key="b", tickets=[second.pk], restock=True)
    assert ticket_type.__class__.objects.get(pk=ticket_type.pk).reserved == sold - 1
    assert set(Ticket.objects.filter(session=session, voided_at__isnull=False)) == {first, second}


# --- Easypay: POST /refund/{capture id}, then its notification -------------------------------------
@pytest.fixture
def easypay_order(organization, event):
    configure(organization, "easypay", secret=EASYPAY_SECRET, credentials={"account_id": "acc", "api_key": "key"})
    session, _ = paid_order(event, provider="easypay", reference=EP_PAYMENT, method="mbway")
    return session


@responses.activate
def test_easypay_refunds_the_capture_and_its_refund_notification_changes_nothing(client, easypay_order, organizer):
    responses.get(f"{EASYPAY_API}/single/{EP_PAYMENT}", json={
        "id": EP_PAYMENT, "payment_status": "paid", "value": 50.0, "currency": "EUR",
        "transactions": [{"id": EP_CAPTURE, "values": {"requested": 50.0, "paid": 50.0}}]})
    responses.post(f"{EASYPAY_API}/refund/{EP_CAPTURE}", status=201, json={
        "status": "ok", "message": ["Your request was successfully created"], "id": EP_REFUND})
    made = refunds.refund(easypay_order, 1250, by=organizer, note="half a ticket", key="click-1")
    sent = responses.calls[1].request
    assert json.loads(sent.body) == {"transaction_key": made.public_id, "value": 12.5}
    assert (sent.headers["AccountId"], sent.headers["ApiKey"]) == ("acc", "key")
    assert made.provider_reference == EP_REFUND
    easypay_order.refresh_from_db()
    assert (easypay_order.status, easypay_order.amount_refunded) == (Status.PARTIALLY_REFUNDED, 1250)
    before = (Transition.objects.count(), OutboxEvent.objects.count())

    # Easypay's generic notification of that refund: its id is the refund's, its key ours.
    note = {"id": EP_REFUND, "key": made.public_id, "type": "refund", "status": "success",
            "messages": ["Your request was successfully refunded"], "date": "2026-12-04 10:00:00"}
    response = post_easypay(client, easypay_order.organization.public_id, note)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert len(responses.calls) == 2  # nothing fetched for it
    easypay_order.refresh_from_db()
    assert (easypay_order.status, easypay_order.amount_refunded) == (Status.PARTIALLY_REFUNDED, 1250)
    assert (Transition.objects.count(), OutboxEvent.objects.count()) == before
    assert InboundWebhook.objects.get().session == easypay_order


@responses.activate
def test_easypay_refusing_the_refund_records_nothing(easypay_order, organizer):
    responses.get(f"{EASYPAY_API}/single/{EP_PAYMENT}", json={
        "id": EP_PAYMENT, "payment_status": "paid", "transactions": [{"id": EP_CAPTURE}]})
    responses.post(f"{EASYPAY_API}/refund/{EP_CAPTURE}", status=400, json={
        "status": "error", "message": ["Refund value exceeds the capture"]})
    with pytest.raises(refunds.RefundFailed):
        refunds.refund(easypay_order, 1250, by=organizer, key="click-1")
    assert not Refund.objects.exists()


# --- Ifthenpay: MB WAY through its refund API; a Multibanco reference only outside ---------------
@pytest.fixture
def ifthenpay(organization):
    return configure(organization, "ifthenpay", secret="anti-phishing-key",
                     credentials={"mbway_key": "MBW-1", "backoffice_key": "1111-2222-3333-4444"})


@responses.activate
def test_ifthenpay_refunds_an_mbway_payment_with_the_backoffice_key(ifthenpay, event, organizer):
    session, _ = paid_order(event, provider="ifthenpay", reference="req-mbway-1", method="mbway")
    responses.post(f"{IFTHENPAY_API}/endpoint/payments/refund", json={"Code": 1, "Message": "Successful refunded"})
    made = refunds.refund(session, 5000, by=organizer, key="click-1")
    assert json.loads(responses.calls[0].request.body) == {
        "backofficekey": "1111-2222-3333-4444", "requestId": "req-mbway-1", "amount": "50.00"}
    session.refresh_from_db()
    assert (session.status, made.status, made.made_outside) == (Status.REFUNDED, "succeeded", False)


@responses.activate
@pytest.mark.parametrize("answer, message", [
    ({"Code": -1, "Message": "Insufficient funds"}, "not enough balance"),
    ({"Code": 0, "Message": "Payment could not be refunded"}, "could not be refunded"),
])
def test_ifthenpay_refusing_an_mbway_refund_records_nothing(ifthenpay, event, organizer, answer, message):
    session, _ = paid_order(event, provider="ifthenpay", reference="req-mbway-1", method="mbway")
    responses.post(f"{IFTHENPAY_API}/endpoint/payments/refund", json=answer)
    with pytest.raises(refunds.RefundFailed, match=message):
        refunds.refund(session, 5000, by=organizer, key="click-1")
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and not Refund.objects.exists()


def test_a_paid_multibanco_reference_is_refunded_outside_with_a_note(ifthenpay, event, organizer):
    session, _ = paid_order(event, provider="ifthenpay", reference="req-mb-1", method="multibanco")
    assert not refunds.plan(session).through_provider
    with responses.RequestsMock():  # any call to a provider would fail this test
        with pytest.raises(refunds.RefundRefused, match="no refund API"):
            refunds.refund(session, 5000, by=organizer, key="click-1")
        with pytest.raises(refunds.RefundRefused, match="note is required"):
            refunds.refund(session, 5000, by=organizer, key="click-2", outside=True)
        made = refunds.refund(session, 5000, by=organizer, key="click-3", outside=True,
                              note="bank transfer to PT50 0000, 4 Dec")
    session.refresh_from_db()
    assert session.status == Status.REFUNDED and made.made_outside and made.provider_reference == ""
    assert _history(session)[-1][2] == "Refunded €50.00 (made outside) by ana: bank transfer to PT50 0000, 4 Dec"


def test_another_organizer_is_named_in_the_history(organization, event):
    session, _ = paid_order(event, provider="sandbox", reference="pay_sbx")
    bea = make_organizer(organization, username="bea")
    refunds.refund(session, 5000, by=bea, note="event moved", key="k")
    assert session.actions.get().summary == "Refunded €50.00 by bea: event moved"


def test_without_the_backoffice_key_an_mbway_refund_can_only_be_recorded_as_made_outside(organization, event):
    configure(organization, "ifthenpay", secret="anti-phishing-key", credentials={"mbway_key": "MBW-1"})
    session, _ = paid_order(event, provider="ifthenpay", reference="req-mbway-1", method="mbway")
    assert not refunds.plan(session).through_provider


# --- At once, on PostgreSQL: the order's row lock decides -------------------------------------------
def _at_once(*calls):
    """Run each call in its own thread and connection, started together; their results."""
    import threading

    from django.db import connection

    results, start = [], threading.Barrier(len(calls))

    def run(call):
        start.wait()
        try:
            results.append(call())
        except refunds.RefundRefused as exc:
            results.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_organizers_refunding_at_once_never_refund_more_than_was_paid(organization, event):
    session, _ = paid_order(event, provider="sandbox", reference="pay_race")
    ana, bea = make_organizer(organization), make_organizer(organization, username="bea")
    results = _at_once(lambda: refunds.refund(session, 4000, by=ana, key="ana-click").amount,
                       lambda: refunds.refund(session, 4000, by=bea, key="bea-click").amount)
    assert sorted(map(str, results)) == ["4000", "At most €10.00 is left to refund."]
    session.refresh_from_db()
    assert (session.amount_refunded, Refund.objects.count()) == (4000, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_double_click_arriving_at_once_refunds_once(organization, event):
    session, _ = paid_order(event, provider="sandbox", reference="pay_race")
    ana = make_organizer(organization)
    results = _at_once(*[lambda: refunds.refund(session, 1000, by=ana, key="same-click").pk] * 2)
    assert len(results) == 2 and len(set(results)) == 1 and Refund.objects.count() == 1
    session.refresh_from_db()
    assert session.amount_refunded == 1000


def test_the_attendee_sees_only_the_tickets_still_valid(client, organization, event, organizer):
    session, _ = paid_order(event, provider="sandbox", reference="pay_sbx")
    voided, kept = Ticket.objects.filter(session=session)
    refunds.refund(session, 2500, by=organizer, key="k", tickets=[voided.pk])
    page = client.get(f"/c/{session.public_id}/status/").content.decode()
    assert "Part of this order was refunded" in page
    assert kept.code in page and voided.code not in page
