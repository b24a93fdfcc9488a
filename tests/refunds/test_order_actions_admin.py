"""The order page's actions in the admin: each confirmed on a page of its own, scoped to the
organizer's organization, allowed by role, recorded with who did it."""

import pytest
import responses
from django.core import mail

from checkout import attendee_emails, services
from checkout.models import CheckoutSession, OrderAction, Status, Ticket, Transition
from ievents.models import Membership, TicketType
from payments.models import Refund
from webhooks.models import OutboxEvent

from ..conftest import make_event, make_organizer
from ..payments.helpers import STRIPE_SECRET, configure, pending_session
from .helpers import paid_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(client, organizer):
    client.force_login(organizer)
    return organizer


@pytest.fixture
def order(event):
    session, _ = paid_order(event, provider="sandbox", reference="pay_sbx_1")
    return session


def _url(session, action=""):
    return f"/admin/checkout/checkoutsession/{session.pk}/" + (f"{action}/" if action else "change/")


def _form(client, session, action) -> dict:
    """The action's confirmation page, as the browser would submit it unchanged."""
    page = client.get(_url(session, action))
    assert page.status_code == 200
    form = page.context["form"]
    return {name: form[name].value() for name in form.fields if form[name].value() is not None}


def test_the_order_page_shows_the_actions_that_apply(client, ana, order, event):
    page = client.get(_url(order)).content.decode()
    for label in ("Refund", "Cancel order", "Resend tickets"):
        assert f">{label}</a>" in page
    assert ">Resolve</a>" not in page
    unpaid = services.create_session(event, [services.Item(event.ticket_types.get(), 1)])
    page = client.get(_url(unpaid)).content.decode()
    assert ">Cancel order</a>" in page and ">Refund</a>" not in page and ">Resend tickets</a>" not in page


def test_the_refund_page_shows_what_is_left_in_euros_and_refunds_half(client, ana, order):
    page = client.get(_url(order, "refund"))
    text = page.content.decode()
    assert "Left to refund" in text and "€50.00" in text and "Sandbox" in text
    data = {**_form(client, order, "refund"), "amount": "25,00", "note": "one can't come"}
    response = client.post(_url(order, "refund"), data)
    assert response.status_code == 302 and response["Location"].endswith(_url(order))
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Status.PARTIALLY_REFUNDED, 2500)
    shown = client.get(_url(order)).content.decode()
    assert "Refunded €25.00." in shown  # the message
    assert "one can&#x27;t come" in shown  # why, in the refunds table


def test_the_same_form_sent_twice_refunds_once(client, ana, order):
    data = {**_form(client, order, "refund"), "amount": "10.00"}
    client.post(_url(order, "refund"), data)
    client.post(_url(order, "refund"), data)
    order.refresh_from_db()
    assert order.amount_refunded == 1000 and Refund.objects.count() == 1


@pytest.mark.parametrize("amount, error", [("50.01", "At most €50.00 is left to refund."),
                                           ("0", "above zero"), ("twelve", "Write an amount such as 12.50."),
                                           ("-3", "Write an amount such as 12.50.")])
def test_an_amount_that_cannot_be_refunded_is_shown_as_an_error(client, ana, order, amount, error):
    data = {**_form(client, order, "refund"), "amount": amount}
    response = client.post(_url(order, "refund"), data)
    assert response.status_code == 200 and error in response.content.decode()
    order.refresh_from_db()
    assert order.amount_refunded == 0 and not Refund.objects.exists()


@responses.activate
def test_a_provider_error_is_a_message_not_a_500(client, ana, organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET, credentials={"secret_key": "sk_test_tenant"})
    session, _ = paid_order(event, provider="stripe", reference="cs_test_paid")
    responses.get("https://api.stripe.com/v1/checkout/sessions/cs_test_paid", status=503, json={"error": {}})
    data = {**_form(client, session, "refund"), "amount": "50.00"}
    response = client.post(_url(session, "refund"), data)
    assert response.status_code == 200
    assert "did not refund" in response.content.decode()
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


def test_another_organizations_order_is_a_404(client, ana, other_organization):
    theirs, _ = paid_order(make_event(other_organization), provider="sandbox", reference="pay_theirs")
    for action in ("refund", "cancel", "resend", "resolve"):
        assert client.get(_url(theirs, action)).status_code == 404
        assert client.post(_url(theirs, action), {"token": "t", "amount": "50", "note": "x",
                                                  "email": "x@example.com"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Status.COMPLETED and not OrderAction.objects.exists()


def test_a_viewer_sees_no_buttons_and_cannot_act(client, organization, order):
    viewer = make_organizer(organization, username="vera")
    Membership.objects.filter(user=viewer).update(role="viewer")
    client.force_login(viewer)
    page = client.get(_url(order)).content.decode()
    assert ">Refund</a>" not in page and ">Resend tickets</a>" not in page
    for action in ("refund", "cancel", "resend"):
        assert client.get(_url(order, action)).status_code == 403
        assert client.post(_url(order, action), {"token": "t", "amount": "50",
                                                 "email": "x@example.com"}).status_code == 403
    order.refresh_from_db()
    assert order.status == Status.COMPLETED and order.amount_refunded == 0


def test_canceling_an_unpaid_order_ends_its_hold_and_is_announced(client, ana, event):
    ticket_type = event.ticket_types.get()
    session, _ = pending_session(event, provider="sandbox", reference="pay_unpaid")
    assert TicketType.objects.get(pk=ticket_type.pk).reserved == 2
    data = {**_form(client, session, "cancel"), "note": "asked by phone"}
    assert client.post(_url(session, "cancel"), data).status_code == 302
    session.refresh_from_db()
    assert session.status == Status.CANCELED and TicketType.objects.get(pk=ticket_type.pk).reserved == 0
    last = Transition.objects.filter(session=session).last()
    assert (last.trigger, last.source, last.detail) == ("cancel", "admin", "Canceled by ana: asked by phone")
    assert OutboxEvent.objects.filter(session=session, type="checkout.session.canceled").exists()
    assert session.actions.get().kind == OrderAction.Kind.CANCEL


def test_canceling_a_paid_order_refunds_it_all_and_puts_the_tickets_back_on_sale(client, ana, order, event):
    ticket_type = event.ticket_types.get()
    text = client.get(_url(order, "cancel")).content.decode()
    assert "refunds everything that is left (€50.00)" in text
    client.post(_url(order, "cancel"), _form(client, order, "cancel"))
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Status.REFUNDED, 5000)
    assert not Ticket.objects.filter(session=order, voided_at__isnull=True).exists()
    assert TicketType.objects.get(pk=ticket_type.pk).reserved == 0
    assert [a.kind for a in order.actions.all()] == ["refund", "cancel"]


def test_resending_to_a_corrected_address_updates_the_order_and_records_it(client, ana, order):
    voided = order.tickets.first()
    Ticket.objects.filter(pk=voided.pk).update(voided_at=order.created_at)
    data = {**_form(client, order, "resend"), "email": "ana.silva@example.org"}
    assert client.post(_url(order, "resend"), data).status_code == 302
    assert attendee_emails.sweep() == 2  # written with the change, sent after it
    # The old address gets a notice (the new one masked), the new one the tickets.
    assert [m.to for m in mail.outbox] == [["ana@example.com"], ["ana.silva@example.org"]]
    assert "a***@example.org" in mail.outbox[0].body and "ana.silva@" not in mail.outbox[0].body
    assert voided.code not in mail.outbox[1].body and order.tickets.last().code in mail.outbox[1].body
    order.refresh_from_db()
    assert order.customer_email == "ana.silva@example.org"
    assert [a.summary for a in order.actions.all()] == [
        "Email corrected by ana from ana@example.com to ana.silva@example.org",
        "Tickets sent again to ana.silva@example.org by ana"]


def test_resending_to_something_that_is_not_an_address_changes_nothing(client, ana, order):
    data = {**_form(client, order, "resend"), "email": "not an address"}
    assert client.post(_url(order, "resend"), data).status_code == 200
    assert not mail.outbox and not OrderAction.objects.exists()


def test_resolving_a_flag_needs_a_note_and_clears_it(client, ana, order):
    CheckoutSession.objects.filter(pk=order.pk).update(needs_attention="paid twice: refund it")
    assert ">Resolve</a>" in client.get(_url(order)).content.decode()
    data = _form(client, order, "resolve")
    response = client.post(_url(order, "resolve"), {**data, "note": ""})
    assert response.status_code == 200
    assert CheckoutSession.objects.get(pk=order.pk).needs_attention
    client.post(_url(order, "resolve"), {**data, "note": "refunded the second payment in Stripe"})
    order.refresh_from_db()
    assert order.needs_attention == ""
    action = order.actions.get()
    assert (action.summary, action.note) == ("Resolved by ana: “paid twice: refund it”",
                                             "refunded the second payment in Stripe")


def test_an_action_that_no_longer_applies_goes_back_to_the_order(client, ana, event):
    session = services.create_session(event, [services.Item(event.ticket_types.get(), 1)])
    response = client.get(_url(session, "refund"))
    assert response.status_code == 302 and response["Location"].endswith(_url(session))


def test_an_action_posted_without_the_csrf_token_is_refused(organizer, order):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(organizer)
    response = browser.post(_url(order, "refund"), {"token": "t", "amount": "50.00"})
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.amount_refunded == 0


def test_a_refund_keeps_its_payment_but_goes_with_its_order(order, organizer):
    from django.db.models import RestrictedError

    from payments import refunds
    from payments.models import Payment

    made = refunds.refund(order, 1000, by=organizer, key="k")
    with pytest.raises(RestrictedError):
        Payment.objects.filter(pk=made.payment_id).delete()
    order.delete()  # a test order, say: its payments and refunds go with it
    assert not Refund.objects.exists()


# --- Amounts in the order's currency and the organizer's language -------------------------------
def test_a_refund_of_1000_on_a_yen_order_is_a_thousand_yen(client, ana, organization):
    yen = make_event(organization, price=1500, name="Tokyo night")
    yen.currency = "JPY"
    yen.save(update_fields=["currency"])
    session, _ = paid_order(yen, provider="sandbox", reference="pay_sbx_jpy")
    assert session.currency == "JPY" and session.amount_paid == 3000
    page = client.get(_url(session, "refund")).content.decode()
    assert "¥3,000" in page and 'value="3000"' in page  # shown and typed without cents
    response = client.post(_url(session, "refund"), {**_form(client, session, "refund"), "amount": "1000"})
    assert response.status_code == 302, response.content.decode()[:2000]
    session.refresh_from_db()
    assert session.amount_refunded == 1000  # ¥1,000, not ¥100,000 read as cents
    assert "Refunded ¥1,000." in client.get(_url(session)).content.decode()


def test_a_portuguese_organizer_refunds_12_50_typed_as_portugal_writes_it(client, ana, order):
    pt = {"HTTP_ACCEPT_LANGUAGE": "pt-PT"}
    page = client.get(_url(order, "refund"), **pt).content.decode()
    assert "Por reembolsar" in page and "50,00 €" in page and 'value="50,00"' in page
    form = {**_form(client, order, "refund"), "amount": "12,50"}
    response = client.post(_url(order, "refund"), form, **pt)
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.amount_refunded == 1250
    assert "Reembolsado 12,50 €." in client.get(_url(order), **pt).content.decode()
    # The stored history stays one language (English), whoever acted in which.
    assert order.actions.get().summary == "Refunded €12.50 by ana"


def test_a_yen_amount_with_cents_is_refused_in_the_organizers_language(client, ana, organization):
    yen = make_event(organization, price=1500, name="Tokyo night")
    yen.currency = "JPY"
    yen.save(update_fields=["currency"])
    session, _ = paid_order(yen, provider="sandbox", reference="pay_sbx_jpy2")
    response = client.post(_url(session, "refund"), {**_form(client, session, "refund"), "amount": "10,5"},
                           HTTP_ACCEPT_LANGUAGE="pt-PT")
    assert response.status_code == 200 and "Os valores em JPY têm no máximo 0 casas decimais." in response.content.decode()
    session.refresh_from_db()
    assert session.amount_refunded == 0
