"""After the purchase, in Chromium on a phone, in Portuguese and English: a refund's email
read back from the email folder; a lost order found through Find my order and its tickets
sent again; three named tickets the gate decides on one by one; a NIF refused and accepted.
The new pages are checked with axe-core like every attendee page (``test_attendee.check``).

Emails are written by Django's file backend into a folder (``EMAIL_BACKEND`` /
``EMAIL_FILE_PATH``, as the contract says) and parsed back; the queued ones are sent by
the sweep the worker's beat would run (``checkout.attendee_emails.sweep``).
"""

from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from checkout import attendee_emails
from checkout.models import CheckoutSession, Status
from ievents.models import TicketType
from payments.models import IntegrationSettings
from tests.attendee.conftest import RULES, make_attendee_event
from tests.browser.test_attendee import VIEWPORTS, check
from tests.refunds.helpers import paid_order
from tests.servers import LocalServer, Reply
from webhooks.models import GateSettings

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def email_folder(settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "emails")
    return tmp_path / "emails"


def read_emails(folder) -> list:
    """Every email the file backend wrote, in the order written (one file per connection)."""
    if not folder.exists():
        return []
    messages = []
    for path in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns):
        for chunk in path.read_bytes().split(b"-" * 79):
            if chunk.strip():
                messages.append(message_from_bytes(chunk.strip() + b"\n", policy=policy.default))
    return messages


def plain(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def phone(new_page):
    def make(language: str):
        return new_page(**VIEWPORTS["phone"], locale=language)

    return make


@pytest.fixture
def attendee_event(organization):
    IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox")
    return make_attendee_event(organization)


def fill_buyer(page, *, name="Ana Silva", email="ana@example.com", words=("Nome", "Email")):
    page.get_by_label(words[0], exact=True).fill(name)
    page.get_by_label(words[1], exact=True).fill(email)
    page.get_by_label("T-shirt size", exact=True).select_option("M")
    page.get_by_label(RULES, exact=True).check()


def test_a_refund_email_is_read_back_from_the_folder_in_portuguese_with_its_amount(
        phone, site, shot, attendee_event, organizer, email_folder):
    page = phone("pt-PT")
    ticket_type = attendee_event.ticket_types.get()
    page.goto(site + attendee_event.get_absolute_url())
    page.get_by_label("Quantidade de General").fill("2")
    page.get_by_role("button", name="Obter bilhetes").click()
    fill_buyer(page)
    page.get_by_role("button", name="Continuar").click()
    page.get_by_role("button", name="Pagar 50,00 €").click()
    page.get_by_role("button", name="Simular sucesso").click()
    expect(page.get_by_text("Vai ao evento!")).to_be_visible()
    session = CheckoutSession.objects.get(status=Status.COMPLETED)
    assert ticket_type.pk and session.language == "pt-pt"

    from payments import refunds

    refunds.refund(session, 2500, by=organizer, key="refund-1", tickets=[session.tickets.first().pk])
    attendee_emails.sweep()
    receipt, refund = read_emails(email_folder)
    assert "(Pagamento de teste, sem movimento de dinheiro)" in plain(receipt)
    assert refund["Subject"] == "Reembolso de 25,00 € para Summit"
    body = plain(refund)
    assert "Reembolsámos 25,00 € da sua encomenda" in body and session.tickets.first().code in body
    assert session.public_id not in body

    link = next(line.split()[-1] for line in body.splitlines() if "/o/" in line)
    page.goto(link)
    expect(page.locator(".ticket-code", has_text=session.tickets.last().code)).to_be_visible()
    check(page, "order-after-refund", shot)


def test_a_lost_order_is_found_through_find_my_order_and_its_tickets_sent_again(
        phone, site, shot, attendee_event, email_folder):
    order, _ = paid_order(attendee_event, provider="sandbox")
    CheckoutSession.objects.filter(pk=order.pk).update(customer_name="Ana Silva")
    page = phone("en")
    page.goto(site + attendee_event.get_absolute_url())
    page.get_by_role("link", name="Find my order").click()
    expect(page.get_by_role("heading", name="Find my order")).to_be_visible()
    check(page, "find-my-order", shot)
    page.get_by_label("Email", exact=True).fill("ana@example.com")
    page.get_by_role("button", name="Send me the links").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    check(page, "find-my-order-sent", shot)

    attendee_emails.sweep()
    [links] = read_emails(email_folder)
    assert links["To"] == "ana@example.com" and links["Subject"] == "Your orders with Acme Events"
    link = next(line.strip() for line in plain(links).splitlines() if "/o/" in line)
    page.goto(link)
    reference = f"{order.public_id[-6:-3].upper()}-{order.public_id[-3:].upper()}"
    expect(page.locator(".reference")).to_have_text(reference)
    assert order.public_id not in page.content()
    check(page, "order-page", shot)
    page.get_by_role("button", name="Email me my tickets again").click()
    expect(page.get_by_role("status").first).to_contain_text("We are sending your tickets to ana@example.com")

    attendee_emails.sweep()
    tickets_email = read_emails(email_folder)[-1]
    assert tickets_email["Subject"] == "Your tickets for Summit" and tickets_email["To"] == "ana@example.com"
    assert all(ticket.code in plain(tickets_email) for ticket in order.tickets.all())
    assert [e.kind for e in attendee_emails.emails_for(order)] == ["tickets"]


@pytest.fixture
def holder_gate(attendee_event):
    """A gate that reads each ticket's holder and refuses one of them by name."""
    gate = GateSettings.objects.create(event=attendee_event, enabled=True, url="http://127.0.0.1:9/",
                                       timeout_ms=3000)
    secret, seen = gate.secret, []

    def decide(req):
        try:
            payload = Webhook(secret).verify(req.body, req.headers)
        except WebhookVerificationError:
            return Reply(401)
        holders = [h["name"] for item in payload["data"]["object"]["line_items"] for h in item["holders"]]
        seen.append(holders)
        banned = [name for name in holders if name == "Bruno Reis"]
        if banned:
            return Reply(403, {"message": f"{banned[0]} is not on the guest list."})
        return Reply(200, {})

    server = LocalServer(decide).start()
    GateSettings.objects.filter(pk=gate.pk).update(url=server.url)
    yield seen
    server.stop()


def test_three_named_tickets_are_decided_by_the_gate_one_holder_at_a_time(
        phone, site, shot, attendee_event, holder_gate):
    TicketType.objects.filter(event=attendee_event).update(holder_names="ticket", holder_email=True)
    page = phone("en")
    page.goto(site + attendee_event.get_absolute_url())
    page.get_by_label("Quantity of General").fill("3")
    page.get_by_role("button", name="Get tickets").click()
    fill_buyer(page, words=("Name", "Email"))
    for number, name in enumerate(["Ana Silva", "Bruno Reis", "Carla Mota"], start=1):
        page.get_by_label(f"Name on ticket {number} (General)").fill(name)
    page.get_by_label("Email for ticket 2 (General)").fill("bruno@example.com")
    check(page, "named-tickets-form", shot)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("Bruno Reis is not on the guest list.")
    page.get_by_label("Name on ticket 2 (General)").fill("Beatriz Reis")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Pay €75.00").click()
    page.get_by_role("button", name="Simulate success").click()
    expect(page.get_by_text("You're going!")).to_be_visible()
    for name in ("Ana Silva", "Beatriz Reis", "Carla Mota"):
        expect(page.locator(".holder", has_text=name)).to_be_visible()
    check(page, "named-tickets", shot)
    assert holder_gate == [["Ana Silva", "Bruno Reis", "Carla Mota"], ["Ana Silva", "Beatriz Reis", "Carla Mota"]]
    session = CheckoutSession.objects.get()
    assert [(t.holder_name, t.holder_email) for t in session.tickets.all()] == [
        ("Ana Silva", ""), ("Beatriz Reis", "bruno@example.com"), ("Carla Mota", "")]


def test_a_nif_with_a_wrong_check_digit_is_refused_and_the_right_one_accepted(phone, site, shot, attendee_event):
    attendee_event.invoice_details = "required"
    attendee_event.save(update_fields=["invoice_details"])
    page = phone("pt-PT")
    page.goto(site + attendee_event.get_absolute_url())
    page.get_by_label("Quantidade de General").fill("1")
    page.get_by_role("button", name="Obter bilhetes").click()
    fill_buyer(page)
    page.get_by_label("NIF (número de contribuinte)").fill("501964844")
    page.get_by_label("Nome ou empresa na fatura").fill("Acme, Lda")
    page.get_by_label("Morada de faturação").fill("Rua Augusta 1, 1100-053 Lisboa")
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("alert")).to_contain_text("Este NIF não é válido")
    check(page, "nif-refused", shot)
    assert CheckoutSession.objects.get().invoice_tax_id == ""
    page.get_by_label("NIF (número de contribuinte)").fill("501 964 843")
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("heading", name="Reveja a sua encomenda")).to_be_visible()
    assert CheckoutSession.objects.get().invoice_tax_id == "501964843"
