"""The attendee's checkout in Chromium, in English and Portuguese, on a phone and a desktop.

Every page and state (form errors, a gate's denial, a failed payment, an expired hold, the
tickets) is checked with axe-core (``vendor/axe.min.js``, MPL-2.0, from the npm package
``axe-core``) and fails on any serious or critical WCAG 2.2 A/AA violation. The tickets'
QR codes are decoded from a screenshot with zxing-cpp and must give each ticket's code.

``ATTENDEE_DOCS=1`` also saves each page as ``docs/img/attendee/<language>-<page>.png`` (the
phone runs), the pictures of ``docs/attendee.md``.
"""

import io
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
import zxingcpp
from django.core import mail
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from checkout import services
from checkout.models import CheckoutSession, Status
from payments import services as payments
from tests.attendee.conftest import RULES, make_attendee_event
from tests.browser.axe import serious_violations
from tests.browser.conftest import DESKTOP, MOBILE
from tests.servers import LocalServer, Reply
from webhooks.models import GateSettings

pytestmark = pytest.mark.django_db(transaction=True)

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "img" / "attendee"

WORDS = {
    "en": {"get": "Get tickets", "qty": "Quantity of General", "name": "Name", "email": "Email",
           "continue": "Continue", "pay": "Pay €50.00", "total": "€50.00", "success": "Simulate success",
           "failure": "Simulate failure", "going": "You're going!", "try": "Try again", "details": "Your details",
           "error": "Error:", "when": "3 January 2027, 20:00 WET", "failed_before": "Your last payment did not go",
           "denied": "This purchase could not be approved.", "warning": "Less than a minute left",
           "expired": "Your ticket hold has expired.", "again": "Start again", "calendar": "Add to calendar",
           "cancel": "Cancel this order", "cancel_yes": "Yes, cancel my order", "canceled": "Your order was canceled",
           "review": "Review your order", "sandbox": "Sandbox"},
    "pt-PT": {"get": "Obter bilhetes", "qty": "Quantidade de General", "name": "Nome", "email": "Email",
              "continue": "Continuar", "pay": "Pagar 50,00 €", "total": "50,00 €", "success": "Simular sucesso",
              "failure": "Simular falha", "going": "Vai ao evento!", "try": "Tentar novamente",
              "details": "Os seus dados", "error": "Erro:", "when": "3 de janeiro de 2027, 20:00 WET",
              "failed_before": "O seu último pagamento não foi concluído",
              "denied": "Não foi possível aprovar esta compra.", "warning": "Falta menos de um minuto",
              "expired": "A reserva dos seus bilhetes expirou.", "again": "Começar de novo",
              "calendar": "Adicionar ao calendário", "cancel": "Cancelar esta encomenda",
              "cancel_yes": "Sim, cancelar a encomenda", "canceled": "A sua encomenda foi cancelada",
              "review": "Reveja a sua encomenda", "sandbox": "Sandbox"},
}
VIEWPORTS = {"phone": {**MOBILE, "is_mobile": True, "has_touch": True}, "desktop": DESKTOP}


@pytest.fixture
def attendee_event(organization):
    return make_attendee_event(organization)


@pytest.fixture
def open_page(new_page):
    def make(language: str, viewport: str = "desktop"):
        page = new_page(**VIEWPORTS[viewport], locale=language)  # the browser's Accept-Language
        page.words = WORDS[language]
        page.docs_name = f"{language}" if viewport == "phone" else ""
        return page

    return make


def check(page, state: str, shot) -> None:
    """axe-core on what the page shows now; the screenshot for the docs when asked."""
    serious = serious_violations(page)
    assert not serious, f"axe on {state}: {serious}"
    assert page.evaluate("document.documentElement.lang") in ("en", "pt-PT")
    small = page.evaluate("""() => [...document.querySelectorAll(
            'main button, main a.button, main input:not([type=hidden]):not([type=checkbox]):not([type=radio]), main select,'
            + ' .field.checkbox .check, header button')]
        .filter(el => el.offsetParent !== null && el.getBoundingClientRect().height < 44)
        .map(el => el.outerHTML.slice(0, 80))""")
    assert not small, f"targets under 44 px on {state}: {small}"
    shot(state, page)
    if os.environ.get("ATTENDEE_DOCS") == "1" and page.docs_name:
        DOCS_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_DIR / f"{page.docs_name}-{state}.png"), full_page=True, scale="css")


def described_ids_exist(page) -> bool:
    return page.evaluate("""() => [...document.querySelectorAll('[aria-describedby]')].every(el =>
        el.getAttribute('aria-describedby').split(/\\s+/).every(id => document.getElementById(id)))""")


def choose(page, event, quantity="2"):
    w = page.words
    page.goto(event.get_absolute_url())
    page.get_by_label(w["qty"]).fill(quantity)


def fill_details(page, event):
    w = page.words
    page.get_by_label(w["name"], exact=True).fill("Ana Silva")
    page.get_by_label(w["email"], exact=True).fill("ana@example.com")
    page.get_by_label("T-shirt size", exact=True).select_option("M")  # the organizer's words, as written
    page.get_by_label(RULES, exact=True).check()


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
@pytest.mark.parametrize("language", ["en", "pt-PT"])
def test_a_purchase_with_errors_a_failed_payment_and_qr_tickets(open_page, shot, attendee_event, language, viewport):
    page = open_page(language, viewport)
    w = page.words
    event = attendee_event

    # Choosing: the date in the event's zone, a running total that follows the quantity.
    choose(page, event)
    expect(page.locator("html")).to_have_attribute("lang", "en" if language == "en" else "pt-PT")
    expect(page.get_by_text(w["when"])).to_be_visible()
    expect(page.locator("[data-total]")).to_have_text(w["total"])
    check(page, "event", shot)
    page.get_by_role("button", name=w["get"]).click()

    # Errors: a summary that takes focus, named in the title, each error tied to its field.
    expect(page.get_by_role("heading", name=w["details"])).to_be_visible()
    check(page, "details", shot)
    page.get_by_label(w["email"], exact=True).fill("not-an-email")
    page.get_by_role("button", name=w["continue"]).click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_have_attribute("role", "alert")
    assert page.title().startswith(w["error"])
    assert described_ids_exist(page)
    expect(page.get_by_label(w["name"], exact=True)).to_have_attribute("aria-invalid", "true")
    check(page, "details-errors", shot)
    summary.get_by_role("link").first.click()  # a summary's link leads to its field
    expect(page.get_by_label(w["name"], exact=True)).to_be_focused()

    fill_details(page, event)
    page.get_by_role("button", name=w["continue"]).click()
    expect(page.get_by_role("heading", name=w["review"])).to_be_visible()
    expect(page.get_by_text(w["when"])).to_be_visible()
    check(page, "review", shot)

    # A failed payment, explained where the attendee tries again.
    page.get_by_label(w["sandbox"]).check()
    page.get_by_role("button", name=w["pay"]).click()
    expect(page.get_by_role("button", name=w["success"])).to_be_visible()
    check(page, "sandbox", shot)
    page.get_by_role("button", name=w["failure"]).click()
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "payment-failed", shot)
    page.get_by_role("link", name=w["try"]).click()
    expect(page.get_by_role("alert")).to_contain_text(w["failed_before"])
    check(page, "retry", shot)
    page.get_by_label(w["sandbox"]).check()
    page.get_by_role("button", name=w["pay"]).click()
    page.get_by_role("button", name=w["success"]).click()

    # The tickets: a QR code each, read from the screen as a door scanner would.
    expect(page.get_by_role("heading", name=w["going"])).to_be_visible()
    check(page, "tickets", shot)
    session = CheckoutSession.objects.get()
    codes = sorted(t.code for t in session.tickets.all())
    picture = page.locator(".tickets").screenshot()
    found = sorted(result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(picture))))
    assert found == codes
    with page.expect_download() as download:
        page.get_by_role("link", name=w["calendar"]).click()
    ics = Path(download.value.path()).read_text()
    assert "BEGIN:VEVENT" in ics and "DTSTART:20270103T200000Z" in ics
    assert len(mail.outbox) == 1 and all(code in mail.outbox[0].body for code in codes)
    assert w["when"] in mail.outbox[0].body  # the email in the attendee's language
    show_email(page, mail.outbox[0], shot)


def show_email(page, email, shot):
    """The HTML part as a mail client shows it (its cid: images inlined), checked like a page."""
    import base64

    html = email.alternatives[0][0]
    for part in email.attachments:
        if hasattr(part, "get_payload") and part["Content-ID"]:
            data = base64.b64encode(part.get_payload(decode=True)).decode()
            html = html.replace(f'cid:{part["Content-ID"].strip("<>")}', f"data:image/png;base64,{data}")
    page.set_content(html)
    found = [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(page.screenshot(full_page=True))))]
    assert sorted(found) == sorted(re.findall(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", email.body))
    check(page, "email", shot)


@pytest.mark.parametrize("language", ["en", "pt-PT"])
def test_a_gate_denial_is_announced_in_the_attendees_language(open_page, shot, attendee_event, language):
    gate = GateSettings.objects.create(event=attendee_event, enabled=True, url="http://127.0.0.1:9/", timeout_ms=2000)
    page = open_page(language, "phone")
    w = page.words
    with LocalServer(Reply(403, {})) as server:  # a denial without words of its own: ours, translated
        GateSettings.objects.filter(pk=gate.pk).update(url=server.url)
        choose(page, attendee_event, "1")
        page.get_by_role("button", name=w["get"]).click()
        fill_details(page, attendee_event)
        page.get_by_role("button", name=w["continue"]).click()
        alert = page.get_by_role("alert")
        expect(alert).to_have_text(re.compile(re.escape(w["denied"])))
        expect(alert).to_be_focused()
        assert page.title().startswith(w["error"])
        check(page, "gate-denied", shot)


@pytest.mark.parametrize("language", ["en", "pt-PT"])
def test_the_hold_counts_down_warns_and_an_expired_hold_keeps_what_was_typed(open_page, shot, attendee_event,
                                                                              language):
    page = open_page(language, "phone")
    w = page.words
    page.clock.install()
    choose(page, attendee_event)
    page.get_by_role("button", name=w["get"]).click()
    expect(page.get_by_role("heading", name=w["details"])).to_be_visible()
    session = CheckoutSession.objects.get()
    CheckoutSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() + timedelta(seconds=90))
    page.reload()
    page.get_by_label(w["name"], exact=True).fill("Rui Costa")
    page.get_by_label(w["email"], exact=True).fill("rui@example.com")

    warning = page.locator(".hold-warning")
    expect(warning).to_have_attribute("aria-live", "assertive")
    expect(warning).to_be_empty()
    page.clock.run_for(40_000)  # 50 s left
    expect(warning).to_contain_text(w["warning"])
    check(page, "hold-warning", shot)
    page.clock.run_for(60_000)  # past the end
    expect(warning).to_contain_text(w["expired"])
    again = page.get_by_role("button", name=w["again"])
    expect(again).to_be_visible()
    check(page, "hold-expired", shot)

    again.click()  # back to the tickets, with the same choice and then the same details
    expect(page.locator("[data-total]")).to_have_text(w["total"])
    page.get_by_role("button", name=w["get"]).click()
    expect(page.get_by_label(w["name"], exact=True)).to_have_value("Rui Costa")
    expect(page.get_by_label(w["email"], exact=True)).to_have_value("rui@example.com")

    services.expire_session(session.pk)
    page.goto(f"/c/{session.public_id}/status/")
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "expired", shot)


def test_cancelling_asks_first_and_the_switcher_changes_the_language(open_page, shot, attendee_event):
    page = open_page("en", "desktop")
    page.docs_name = "en"
    choose(page, attendee_event, "1")
    page.get_by_role("button", name=page.words["get"]).click()
    page.get_by_role("link", name=page.words["cancel"]).click()
    check(page, "cancel", shot)
    page.get_by_role("link", name="No, keep my order").click()  # changed nothing
    expect(page.get_by_role("heading", name=page.words["details"])).to_be_visible()
    assert CheckoutSession.objects.get().status == Status.OPEN

    page.get_by_role("button", name="Português").click()
    expect(page.locator("html")).to_have_attribute("lang", "pt-PT")
    page.words, page.docs_name = WORDS["pt-PT"], "pt-PT"
    expect(page.get_by_role("heading", name=page.words["details"])).to_be_visible()
    page.get_by_role("link", name=page.words["cancel"]).click()  # remembered on the next page
    check(page, "cancel", shot)
    page.get_by_role("button", name=page.words["cancel_yes"]).click()
    expect(page.get_by_role("status").filter(has_text=page.words["canceled"])).to_be_visible()
    check(page, "canceled", shot)
    assert CheckoutSession.objects.get().status == Status.CANCELED

    page.get_by_role("button", name="English").click()  # and back, for a second order
    page.words, page.docs_name = WORDS["en"], "en"
    choose(page, attendee_event, "1")
    page.get_by_role("button", name=page.words["get"]).click()
    page.get_by_role("link", name=page.words["cancel"]).click()
    page.get_by_role("button", name=page.words["cancel_yes"]).click()
    expect(page.get_by_role("status").filter(has_text=page.words["canceled"])).to_be_visible()
    check(page, "canceled", shot)


@pytest.mark.parametrize("language", ["en", "pt-PT"])
def test_a_pending_payment_updates_in_place_when_it_arrives(open_page, shot, attendee_event, language):
    session = services.create_session(attendee_event, [services.Item(attendee_event.ticket_types.get(), 1)])
    session = services.save_attendee_details(session, name="Ana", email="ana@example.com", answers={})
    payments.begin_payment(session, "sandbox")
    page = open_page(language, "phone")
    page.goto(f"/c/{session.public_id}/status/")
    region = page.locator("#order-status")
    expect(region).to_have_attribute("aria-live", "polite")
    check(page, "payment-pending", shot)
    page.evaluate("window.sameDocument = true")
    services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR", source="provider_webhook")
    expect(region.get_by_role("heading", name=page.words["going"])).to_be_visible(timeout=15_000)  # no reload
    assert page.evaluate("window.sameDocument") is True  # swapped in place, not reloaded


def test_the_accessibility_check_fails_on_a_serious_violation(open_page, shot, attendee_event):
    page = open_page("en")
    page.goto(attendee_event.get_absolute_url())
    page.evaluate("""() => { const box = document.createElement('input'); box.type = 'text';
                             box.style.minHeight = '44px'; document.querySelector('main').append(box); }""")
    with pytest.raises(AssertionError, match="label"):  # an input nobody can name
        check(page, "unlabelled-input", shot)


@pytest.mark.parametrize("language", ["en", "pt-PT"])
def test_the_not_found_page_is_accessible_in_each_language(open_page, shot, language):
    page = open_page(language, "phone")
    page.goto("/c/cs_doesnotexist/")
    expect(page.get_by_role("link", name="iEvents")).to_be_visible()
    check(page, "not-found", shot)
