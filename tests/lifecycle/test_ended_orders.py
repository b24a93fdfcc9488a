"""Orders that end without tickets: their seats come back, and a canceled order stays
canceled whatever money arrives later (issue 21, items 3 and 4), through the real admin
and the providers' real routes (their APIs stood in for by ``responses``)."""

import json

import pytest
import responses

from checkout import services
from checkout.models import CheckoutSession, Source, Status, Ticket
from ievents.models import TicketType
from payments.models import Payment

from ..payments.helpers import (
    EASYPAY_API,
    EASYPAY_SECRET,
    IFTHENPAY_KEY,
    STRIPE_SECRET,
    charge_object,
    configure,
    easypay_notification,
    easypay_single,
    ifthenpay_callback,
    pending_session,
    post_easypay,
    post_stripe,
    stripe_event,
)
from ..refunds.helpers import paid_order
from ..refunds.test_order_actions_admin import _form, _url

pytestmark = pytest.mark.django_db
EP_ID = "0c7a4b8e-5d1f-4c2a-9e3b-7f6a5d4c3b2a"


@pytest.fixture
def ana(client, organizer):
    client.force_login(organizer)
    return organizer


def _reserved(event) -> int:
    return TicketType.objects.get(event=event).reserved


def _paid_for_other_details(event):
    """Money that arrived for details changed after the payment started: paid, flagged, no tickets."""
    session, payment = pending_session(event, provider="sandbox", reference="pay_sbx_other")
    services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                      source=Source.PROVIDER_WEBHOOK, approved_fingerprint="f" * 64)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.SUCCEEDED, amount_received=5000)
    session.refresh_from_db()
    assert session.status == Status.PAID and "no tickets issued, refund needed" in session.needs_attention
    assert not Ticket.objects.filter(session=session).exists()
    return session


# --- 21.3: seats of a paid order without tickets -------------------------------------------------
def test_money_that_will_never_be_tickets_gives_its_seats_back_at_once(event):
    session = _paid_for_other_details(event)
    assert session.holds_released and _reserved(event) == 0


@pytest.mark.parametrize("restock", [True, False])
def test_refunding_a_flagged_order_from_before_the_fix_puts_its_seats_back(client, ana, event, restock):
    session = _paid_for_other_details(event)
    # As such an order was left before: its hold never released.
    TicketType.objects.filter(event=event).update(reserved=2)
    CheckoutSession.objects.filter(pk=session.pk).update(holds_released=False)
    data = {**_form(client, session, "refund"), "amount": "50.00"}
    if restock:
        data["restock"] = "on"
    else:
        data.pop("restock", None)
    assert client.post(_url(session, "refund"), data).status_code == 302
    session.refresh_from_db()
    assert session.status == Status.REFUNDED and session.amount_refunded == 5000
    assert session.holds_released and _reserved(event) == 0  # no ticket to keep off sale: the seats were only held


def test_canceling_a_flagged_order_from_before_the_fix_puts_its_seats_back(client, ana, event):
    session = _paid_for_other_details(event)
    TicketType.objects.filter(event=event).update(reserved=2)
    CheckoutSession.objects.filter(pk=session.pk).update(holds_released=False)
    assert client.post(_url(session, "cancel"), _form(client, session, "cancel")).status_code == 302
    session.refresh_from_db()
    assert session.status == Status.REFUNDED and _reserved(event) == 0


def test_a_refund_that_keeps_the_seats_off_sale_marks_its_tickets_so(client, ana, event):
    order, _ = paid_order(event, provider="sandbox", reference="pay_sbx_keep")
    data = {**_form(client, order, "refund"), "amount": "50.00"}
    data.pop("restock", None)
    client.post(_url(order, "refund"), data)
    assert list(Ticket.objects.filter(session=order).values_list("back_on_sale", flat=True)) == [False, False]
    assert _reserved(event) == 2  # the organizer's choice: kept off sale


def test_a_full_refund_made_at_stripe_voids_the_tickets_and_keeps_their_seats_off_sale(client, organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    order, _ = paid_order(event, provider="stripe", reference="cs_test_refunded_there")
    response = post_stripe(client, organization.public_id,
                           stripe_event("charge.refunded", charge_object(order, refunded=5000)))
    assert response.status_code == 200
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Status.REFUNDED, 5000)
    assert not Ticket.objects.filter(session=order, voided_at__isnull=True).exists()
    assert _reserved(event) == 2  # as a refund from the admin without "put back on sale"


def test_a_full_refund_made_at_stripe_of_a_flagged_order_gives_its_held_seats_back(client, organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    session = _paid_for_other_details(event)
    Payment.objects.filter(session=session).update(provider="stripe", provider_reference="cs_test_flagged")
    TicketType.objects.filter(event=event).update(reserved=2)  # as such an order was left before the fix
    CheckoutSession.objects.filter(pk=session.pk).update(holds_released=False)
    post_stripe(client, organization.public_id, stripe_event("charge.refunded", charge_object(session, refunded=5000)))
    session.refresh_from_db()
    assert session.status == Status.REFUNDED and _reserved(event) == 0


# --- 21.4: a canceled order is never revived by its money -----------------------------------------
@responses.activate
def test_a_multibanco_payment_after_the_organizer_canceled_is_flagged_never_tickets(client, ana, organization,
                                                                                     event):
    """Easypay: the cancel deletes the reference at Easypay; if it is paid anyway, the money
    is recorded and flagged for a refund."""
    configure(organization, "easypay", secret=EASYPAY_SECRET, credentials={"account_id": "acc", "api_key": "key"})
    session, payment = pending_session(event, provider="easypay", reference=EP_ID, method="multibanco")
    deleted = responses.delete(f"{EASYPAY_API}/single/{EP_ID}", status=204)
    data = {**_form(client, session, "cancel"), "note": "fraud, do not sell"}
    page = client.post(_url(session, "cancel"), data, follow=True)
    assert deleted.call_count == 1 and "canceled" in page.content.decode()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CANCELED and _reserved(event) == 0

    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, value=50.0))
    assert post_easypay(client, organization.public_id, easypay_notification(EP_ID)).status_code == 200
    session.refresh_from_db()
    assert session.status == Status.PAID and session.amount_paid == 5000
    assert session.needs_attention == "paid after the order was canceled: no tickets issued, refund needed"
    assert not Ticket.objects.filter(session=session).exists() and _reserved(event) == 0
    assert "complete" not in session.transitions.values_list("trigger", flat=True)


@responses.activate
def test_an_ifthenpay_reference_cannot_be_canceled_there_so_the_organizer_is_told(client, ana, organization, event):
    configure(organization, "ifthenpay", secret=IFTHENPAY_KEY, credentials={"mb_key": "MBK-1"})
    session, _ = pending_session(event, provider="ifthenpay", reference="REQ-cancel", method="multibanco")
    page = client.post(_url(session, "cancel"), _form(client, session, "cancel"), follow=True)
    assert "cannot cancel payment" in page.content.decode() and not responses.calls
    assert ifthenpay_callback(client, organization.public_id, request_id="REQ-cancel", amount="50.00").status_code == 200
    session.refresh_from_db()
    assert session.status == Status.PAID and "canceled" in session.needs_attention
    assert not Ticket.objects.filter(session=session).exists()


@responses.activate
def test_canceling_expires_the_stripe_checkout_session(client, ana, organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET, credentials={"secret_key": "sk_test_org"})
    session, payment = pending_session(event, provider="stripe", reference="cs_test_open", method="card")
    expired = responses.post("https://api.stripe.com/v1/checkout/sessions/cs_test_open/expire",
                             json={"id": "cs_test_open", "object": "checkout.session", "status": "expired"})
    client.post(_url(session, "cancel"), _form(client, session, "cancel"))
    assert expired.call_count == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CANCELED


@responses.activate
def test_a_provider_that_refuses_the_cancel_is_a_message_not_a_500(client, ana, organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET, credentials={"secret_key": "sk_test_org"})
    session, payment = pending_session(event, provider="stripe", reference="cs_test_done", method="card")
    responses.post("https://api.stripe.com/v1/checkout/sessions/cs_test_done/expire", status=400,
                   json={"error": {"type": "invalid_request_error", "message": "Only open sessions can be expired."}})
    page = client.post(_url(session, "cancel"), _form(client, session, "cancel"), follow=True)
    assert page.status_code == 200 and "could not be canceled at the provider" in page.content.decode()
    session.refresh_from_db()
    payment.refresh_from_db()
    assert session.status == Status.CANCELED and payment.status == Payment.Status.PENDING


def test_a_canceled_order_paid_through_the_api_path_twice_is_flagged_once(event):
    session, _ = pending_session(event, provider="sandbox", reference="pay_sbx_twice")
    services.cancel_session(session.pk, Source.ADMIN, detail="canceled")
    for _ in range(2):
        services.record_payment_succeeded(session.pk, amount=5000, currency="EUR", source=Source.PROVIDER_WEBHOOK)
    session.refresh_from_db()
    assert session.status == Status.PAID and list(session.transitions.values_list("trigger", flat=True)) == [
        "start_payment", "cancel", "pay"]
    assert json.dumps(session.needs_attention).count("canceled") == 1
