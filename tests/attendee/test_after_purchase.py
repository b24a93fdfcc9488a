"""After the purchase: every change told to the attendee once, in their language; Find my
order and the order's signed link; named tickets; invoice details; the small things."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.utils import timezone

from checkout import attendee_emails, order_actions, order_links
from checkout.models import AttendeeEmail, CheckoutSession, Status, Ticket
from ievents.models import TicketType
from ievents.operations import erasure
from payments import refunds, reminders
from payments.models import Payment

from ..payments.helpers import pending_session
from ..refunds.helpers import paid_order
from .conftest import details, english, pick, portuguese

pytestmark = pytest.mark.django_db


def _sent() -> list:
    attendee_emails.sweep()
    return list(mail.outbox)


def _text(message) -> str:
    return message.body + message.alternatives[0][0]


# --- Every change told, once, in the attendee's language ------------------------------------
def test_a_refund_is_told_in_the_attendees_language_with_its_amount_and_void_ticket(event, organizer):
    order, _ = paid_order(event, provider="sandbox")
    CheckoutSession.objects.filter(pk=order.pk).update(language="pt-pt")
    order.refresh_from_db()
    ticket = order.tickets.first()
    refunds.refund(order, 2500, by=organizer, key="click-1", tickets=[ticket.pk])
    [email] = _sent()
    assert email.to == ["ana@example.com"]
    assert email.subject == "Reembolso de 25,00 € para Summit"
    assert "Reembolsámos 25,00 €" in email.body and f"Este bilhete foi anulado: {ticket.code}." in email.body
    assert "pagamento de teste" in email.body and order.public_id not in _text(email)
    assert [e.kind for e in attendee_emails.emails_for(order)] == ["refund"]


def test_a_refund_made_at_the_provider_is_told_once_with_its_amount(event):
    from checkout.models import Source
    from payments.base import PaymentUpdate, UpdateKind
    from payments.services import apply_update

    order, payment = paid_order(event, provider="stripe", reference="pi_1", method="card")
    news = PaymentUpdate(UpdateKind.PARTIALLY_REFUNDED, provider_reference="pi_1", amount=1500, currency="EUR")
    for _ in range(2):  # providers repeat themselves
        apply_update(order, news, source=Source.PROVIDER_WEBHOOK, provider="stripe")
    [email] = _sent()
    assert "We refunded €15.00" in email.body and "5 to 10 working days" in email.body


def test_each_change_is_emailed_once_however_often_it_is_queued_or_swept(event, organizer):
    order, _ = paid_order(event, provider="sandbox")
    refunds.refund(order, 1000, by=organizer, key="click-1")
    refunds.refund(order, 1000, by=organizer, key="click-1")  # the same click again: the same refund
    assert attendee_emails.queue(order, AttendeeEmail.Kind.REFUND, f"refund:{order.refunds.get().public_id}") is False
    key = AttendeeEmail.objects.get().key
    assert attendee_emails.send(key) and not attendee_emails.send(key)
    assert attendee_emails.sweep() == 0
    assert len(mail.outbox) == 1 and attendee_emails.emails_for(order)[0].sent_at is not None


def test_a_mail_server_down_leaves_the_email_for_the_sweep(event, organizer, settings):
    order, _ = paid_order(event, provider="sandbox")
    refunds.refund(order, 1000, by=organizer, key="click-1")
    settings.EMAIL_BACKEND = "tests.attendee.test_after_purchase.Broken"
    assert attendee_emails.sweep() == 0
    row = AttendeeEmail.objects.get()
    assert row.sent_at is None and row.last_error == "ConnectionRefusedError"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert attendee_emails.sweep(now=timezone.now() + timedelta(minutes=5)) == 1


class Broken:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError


def test_an_organizer_cancellation_says_why_and_an_unpaid_one_that_nothing_was_charged(event, organizer):
    paid, _ = paid_order(event, provider="sandbox")
    refunds.cancel_paid_order(paid, by=organizer, note="The venue flooded.", key="k")
    unpaid, _ = pending_session(event, provider="sandbox", email="rui@example.com")
    order_actions.cancel_order(unpaid, by=organizer, note="")
    first, second = _sent()
    assert "The organizer canceled your order" in first.body and "Their reason: The venue flooded." in first.body
    assert "The €50.00 you paid is being refunded." in first.body
    assert second.to == ["rui@example.com"] and "Nothing was charged" in second.body
    assert [e.kind for e in attendee_emails.emails_for(paid)] == ["canceled"]  # one email, not refund + cancel


def test_a_pending_multibanco_reference_is_recalled_once_before_it_expires(event):
    session, payment = pending_session(event, provider="easypay", method="multibanco")
    deadline = timezone.now() + timedelta(hours=10)
    Payment.objects.filter(pk=payment.pk).update(instructions={
        "entity": "12345", "reference": "123 456 789", "deadline_at": deadline.isoformat()})
    later, _ = pending_session(event, provider="easypay", method="multibanco", email="rui@example.com")
    Payment.objects.filter(session=later).update(instructions={
        "entity": "12345", "reference": "999", "deadline_at": (timezone.now() + timedelta(hours=40)).isoformat()})
    assert reminders.remind_pending_payments() == 1
    assert reminders.remind_pending_payments() == 0
    [email] = _sent()
    assert email.to == ["ana@example.com"] and "Entity: 12345 · Reference: 123 456 789 · Amount: €50.00" in email.body


def test_a_payment_that_could_not_become_tickets_is_told_to_the_attendee(event):
    session, payment = pending_session(event, provider="sandbox")
    TicketType.objects.filter(event=event).update(reserved=0)
    from checkout import services
    from checkout.models import Source

    CheckoutSession.objects.filter(pk=session.pk).update(holds_released=True)
    TicketType.objects.filter(event=event).update(quantity=0)
    services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                      source=Source.PROVIDER_WEBHOOK)
    [email] = _sent()
    assert "could not issue its tickets" in email.body


def test_resolving_tells_the_attendee_only_when_asked(event, organizer):
    order, _ = paid_order(event, provider="sandbox")
    for note, tell in (("Checked, all fine.", False), ("We refunded the second payment.", True)):
        CheckoutSession.objects.filter(pk=order.pk).update(needs_attention="paid twice")
        order_actions.resolve_attention(order, by=organizer, note=note, tell_attendee=tell)
    [email] = _sent()
    assert "Their note: We refunded the second payment." in email.body


# --- Find my order ---------------------------------------------------------------------------
def _find(client, organization, email, **extra):
    return client.post(f"/find/{organization.slug}/", {"email": email}, **extra)


def _normalised(response) -> str:
    page = response.content.decode()
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)
    return page.replace("ana@example.com", "X").replace("nobody@example.com", "X")


def test_find_my_order_answers_the_same_and_sends_links_only_to_an_address_with_orders(client, event, organizer):
    order, _ = paid_order(event, provider="sandbox")
    known, unknown = _find(client, event.organization, "ana@example.com"), _find(client, event.organization,
                                                                                 "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert _normalised(known) == _normalised(unknown)
    [email] = _sent()
    assert email.to == ["ana@example.com"] and email.subject == "Your orders with Acme Events"
    [link] = re.findall(r"http://\S+/o/\S+/", email.body)
    assert order.public_id not in email.body
    page = client.get(link[link.index("/o/"):]).content.decode()
    assert "Summit" in page and order.tickets.first().code in page and order.public_id not in page


def test_find_my_order_is_limited_per_address_quietly_and_per_client_with_a_429(client, event, settings):
    paid_order(event, provider="sandbox")
    settings.FIND_ORDER_MAX_PER_EMAIL, settings.FIND_ORDER_MAX_PER_CLIENT = 2, 4
    for _ in range(3):
        assert _find(client, event.organization, "ana@example.com", REMOTE_ADDR="203.0.113.7").status_code == 200
    assert len(_sent()) == 2  # the third asked for the same address, answered alike, sent nothing
    assert _find(client, event.organization, "b@example.com", REMOTE_ADDR="203.0.113.7").status_code == 200
    response = _find(client, event.organization, "c@example.com", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 429 and 'role="alert"' in response.content.decode()
    assert _find(client, event.organization, "c@example.com", REMOTE_ADDR="203.0.113.8").status_code == 200


def test_find_my_order_requests_are_forgotten_once_their_limit_and_sending_are_over(client, event, settings):
    _find(client, event.organization, "nobody@example.com")
    attendee_emails.sweep()
    assert AttendeeEmail.objects.filter(to="nobody@example.com").exists()
    attendee_emails.sweep(now=timezone.now() + timedelta(hours=settings.CONFIRMATION_GIVE_UP_HOURS + 1))
    assert not AttendeeEmail.objects.filter(to="nobody@example.com").exists()


def test_an_order_link_is_signed_expires_and_dies_with_a_new_address(client, event, organizer, settings):
    order, _ = paid_order(event, provider="sandbox")
    token = order_links.token_for(order)
    assert client.get(f"/o/{token}/").status_code == 200
    assert client.get(f"/o/{token[:-2]}xx/").status_code == 404
    forged = signing.dumps([order.pk + 1, "0" * 16], salt="another salt")
    assert client.get(f"/o/{forged}/").status_code == 404
    settings.ORDER_LINK_MAX_AGE_DAYS = 0
    assert client.get(f"/o/{token}/").status_code == 404
    settings.ORDER_LINK_MAX_AGE_DAYS = 30
    order_actions.resend_tickets(order, to="ana.silva@example.org", by=organizer)
    assert client.get(f"/o/{token}/").status_code == 404


def test_from_the_link_the_attendee_gets_the_tickets_again_downloads_them_and_the_calendar(client, event):
    order, _ = paid_order(event, provider="sandbox")
    token = order_links.token_for(order)
    client.post(f"/o/{token}/resend/")
    client.post(f"/o/{token}/resend/")  # two clicks, two resends: each asked for
    emails = _sent()
    assert [m.to for m in emails] == [["ana@example.com"]] * 2 and emails[0].subject == "Your tickets for Summit"
    code = order.tickets.first().code
    png = client.get(f"/o/{token}/t/{code}.png")
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert client.get(f"/o/{token}/t/AAAA-BBBB-CCCC.png").status_code == 404
    ics = client.get(f"/o/{token}/calendar.ics")
    assert 'filename="summit-' in ics["Content-Disposition"] and b"DTEND:" in ics.content


def test_from_the_link_an_unpaid_order_is_canceled_and_nothing_is_charged(client, event):
    english(client)
    session, _ = pending_session(event, provider="sandbox")
    token = order_links.token_for(session)
    assert "Cancel this order" in client.get(f"/o/{token}/").content.decode()
    client.post(f"/o/{token}/cancel/")
    session.refresh_from_db()
    assert session.status == Status.CANCELED
    [email] = _sent()
    assert "was canceled, as you asked" in email.body and "Nothing was charged" in email.body


def test_a_paid_order_cannot_be_canceled_from_its_link(client, event):
    order, _ = paid_order(event, provider="sandbox")
    token = order_links.token_for(order)
    client.post(f"/o/{token}/cancel/")
    order.refresh_from_db()
    assert order.status == Status.COMPLETED


# --- Named tickets ----------------------------------------------------------------------------
def test_each_named_ticket_carries_its_holder_to_the_ticket_the_api_and_the_csv(client, event, organizer):
    english(client)
    event.ticket_types.update(holder_names="ticket", holder_email=True)
    form_url = pick(client, event, quantity=3)
    page = client.get(form_url).content.decode()
    assert "Name on ticket 3 (General)" in page and "Who holds each ticket" in page
    item = CheckoutSession.objects.get().line_items.get()
    names = {f"holder_{item.pk}_{i}_name": name for i, name in enumerate(["Ana Silva", "Bruno Reis", "Carla Mota"])}
    names[f"holder_{item.pk}_1_email"] = "bruno@example.com"
    missing = client.post(form_url, details(event, **{**names, f"holder_{item.pk}_2_name": ""}))
    assert missing.status_code == 200 and "This field is required." in missing.content.decode()
    review = client.post(form_url, details(event, **names))["Location"]
    client.post(client.post(review, {"provider": "sandbox"})["Location"], {"outcome": "success"})
    session = CheckoutSession.objects.get()
    client.get(f"/c/{session.public_id}/return/?payment={session.payments.get().public_id}")
    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    assert [(t.holder_name, t.holder_email) for t in session.tickets.all()] == [
        ("Ana Silva", ""), ("Bruno Reis", "bruno@example.com"), ("Carla Mota", "")]
    from checkout.representation import session_as_api

    shown = session_as_api(session)
    assert [h["name"] for h in shown["ticket_holders"]] == ["Ana Silva", "Bruno Reis", "Carla Mota"]
    assert "Carla Mota" in client.get(f"/c/{session.public_id}/status/").content.decode()
    client.force_login(organizer)
    rows = list(csv.DictReader(io.StringIO(b"".join(
        client.get("/admin/checkout/checkoutsession/export/").streaming_content).decode())))
    assert sorted(row["Ticket holder"] for row in rows) == ["Ana Silva", "Bruno Reis", "Carla Mota"]


def test_a_per_ticket_question_is_asked_of_each_holder_and_kept_on_their_ticket(client, event):
    from checkout import services
    from checkout.models import Source

    english(client)
    event.ticket_types.update(holder_names="ticket")
    event.questions.filter(text="T-shirt size").update(per_ticket=True)
    form_url = pick(client, event, quantity=2)
    page = client.get(form_url).content.decode()
    assert "T-shirt size (ticket 1)" in page and "T-shirt size (ticket 2)" in page
    session = CheckoutSession.objects.get()
    item = session.line_items.get()
    size = event.questions.get(text="T-shirt size")
    data = details(event, **{f"q_{size.pk}": None, f"holder_{item.pk}_0_name": "Ana Silva",
                             f"holder_{item.pk}_1_name": "Rui Costa", f"holder_{item.pk}_0_q_{size.pk}": "S",
                             f"holder_{item.pk}_1_q_{size.pk}": "L"})
    assert client.post(form_url, data).status_code == 302
    CheckoutSession.objects.filter(pk=session.pk).update(status="paid")
    services.complete(session.pk, Source.ADMIN)
    assert [(t.holder_name, t.holder_answers) for t in Ticket.objects.filter(session=session)] == [
        ("Ana Silva", {"T-shirt size": "S"}), ("Rui Costa", {"T-shirt size": "L"})]


def test_one_name_per_order_is_still_the_default(client, event):
    english(client)
    form_url = pick(client, event, quantity=2)
    assert "Name on ticket" not in client.get(form_url).content.decode()


# --- Invoice details ----------------------------------------------------------------------------
@pytest.mark.parametrize("number, ok", [("501964843", True), ("501964844", False), ("PT 501 964 843", True),
                                        ("DE136695976", True), ("DE136695977", False), ("123", False)])
def test_a_nif_or_eu_vat_number_is_checked_by_its_rules(client, event, number, ok):
    portuguese(client)
    event.invoice_details = "required"
    event.save(update_fields=["invoice_details"])
    form_url = pick(client, event)
    response = client.post(form_url, details(event, invoice_tax_id=number, invoice_name="Acme, Lda",
                                             invoice_address="Rua Augusta 1, Lisboa"))
    session = CheckoutSession.objects.get()
    if ok:
        assert response.status_code == 302 and session.invoice_tax_id in ("501964843", "DE136695976")
    else:
        assert response.status_code == 200 and session.invoice_tax_id == ""
        assert "não é válido" in response.content.decode()


def test_invoice_details_are_optional_required_or_off_and_erased_with_the_attendee(client, event, organizer):
    english(client)
    form_url = pick(client, event)
    assert "NIF" not in client.get(form_url).content.decode()
    event.invoice_details = "optional"
    event.save(update_fields=["invoice_details"])
    assert client.post(form_url, details(event)).status_code == 302  # optional: none given is fine
    refused = client.post(form_url, details(event, invoice_name="Acme"))
    assert "Give the NIF for the invoice" in refused.content.decode()
    client.post(form_url, details(event, invoice_tax_id="501964843", invoice_name="Acme"))
    session = CheckoutSession.objects.get()
    from checkout.representation import session_as_api

    assert session_as_api(session)["invoice"] == {"tax_id": "501964843", "name": "Acme", "address": ""}
    erasure.erase_attendee(event.organization, "ana@example.com", source="admin")
    session.refresh_from_db()
    assert (session.invoice_tax_id, session.invoice_name) == ("", "")


# --- The small things ---------------------------------------------------------------------------
def test_a_quantity_over_the_limit_says_the_limit_in_words(client, event):
    portuguese(client)
    ticket_type = event.ticket_types.get()
    response = client.post(event.get_absolute_url(), {f"qty_{ticket_type.public_id}": 50})
    assert "No máximo 10 bilhetes por encomenda." in response.content.decode()


def test_continue_after_the_hold_expired_says_so_once(client, event):
    english(client)
    form_url = pick(client, event)
    CheckoutSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = client.post(form_url, details(event)).content.decode()
    assert page.count(">Your ticket hold has expired") == 1  # shown once (the script's copy is an attribute)


def test_the_calendar_ends_when_the_event_does_and_has_a_readable_name(client, event):
    order, _ = paid_order(event, provider="sandbox")
    event.ends_at = event.starts_at + timedelta(hours=5)
    event.save(update_fields=["ends_at"])
    response = client.get(f"/c/{order.public_id}/calendar.ics")
    assert b"DTEND:20270104T010000Z" in response.content
    reference = f"{order.public_id[-6:-3].upper()}-{order.public_id[-3:].upper()}"
    assert response["Content-Disposition"] == f'attachment; filename="summit-{reference}.ics"'


def test_the_status_page_shows_the_reference_not_the_internal_id(client, event):
    order, _ = paid_order(event, provider="sandbox")
    page = client.get(f"/c/{order.public_id}/status/").content.decode()
    assert "Order reference" in page and f">{order.public_id}<" not in page and "(full number" not in page
    assert "Find my order" in page

