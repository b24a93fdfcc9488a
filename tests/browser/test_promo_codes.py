"""Promo and access codes in a real browser (Debian's Chromium) against a live server: the
discount shown before anything is bought and charged by the sandbox, a hidden ticket type
revealed by an access code, and a used-up code refused in both languages."""

import pytest
from playwright.sync_api import expect

from checkout import promo, services
from checkout.models import CheckoutSession, PromoCode, Status
from ievents.models import TicketType
from payments.models import Payment
from tests.conftest import make_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def event(organization):
    event = make_event(organization, price=1850, questions=False)
    return event


def test_a_20_percent_code_on_the_portuguese_page_shows_14_80_and_the_sandbox_is_charged_14_80(new_page, shot,
                                                                                                 event):
    PromoCode.objects.create(event=event, code="SOCIOS20", percent_off=20)
    page = new_page(locale="pt-PT")
    page.goto(event.get_absolute_url())
    expect(page.locator(".ticket-row")).to_contain_text("18,50 €")
    page.get_by_label("Código promocional").fill("socios20")
    page.get_by_role("button", name="Aplicar").click()
    row = page.locator(".ticket-row")
    expect(row.locator("s")).to_contain_text("18,50 €")  # struck through
    expect(row.locator(".offer-price")).to_have_text("14,80 €")
    expect(page.get_by_role("status")).to_contain_text("SOCIOS20")
    shot("code-applied")
    page.get_by_label("Quantidade de General").fill("1")
    expect(page.locator("[data-total]")).to_have_text("14,80 €")
    page.get_by_role("button", name="Obter bilhetes").click()
    expect(page.get_by_role("heading", name="Os seus dados")).to_be_visible()
    expect(page.get_by_test_id("total")).to_have_text("14,80 €")
    page.get_by_label("Nome", exact=True).fill("Ana Silva")
    page.get_by_label("Email", exact=True).fill("ana@example.com")
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("heading", name="Reveja a sua encomenda")).to_be_visible()
    page.get_by_label("Sandbox").check()
    shot("review")
    page.get_by_role("button", name="Pagar 14,80 €").click()
    expect(page.get_by_text("14,80 €").first).to_be_visible()
    shot("sandbox")
    page.get_by_role("button", name="Simular sucesso").click()
    expect(page.get_by_role("heading", name="Vai ao evento!")).to_be_visible()

    session = CheckoutSession.objects.get()
    payment = Payment.objects.get(session=session)
    assert (payment.amount, payment.currency) == (1480, "EUR")
    assert (session.status, session.amount_paid, session.discount_total, session.promo_code_text) == (
        Status.COMPLETED, 1480, 370, "SOCIOS20")


def test_an_access_code_reveals_a_hidden_ticket_type(page, shot, event):
    speaker = TicketType.objects.create(event=event, name="Speaker", price=0, quantity=10, hidden=True, position=9)
    code = PromoCode.objects.create(event=event, code="SPEAKERS")
    code.reveals_ticket_types.set([speaker])
    page.goto(event.get_absolute_url())
    expect(page.locator(".ticket-row")).to_have_count(1)
    expect(page.get_by_text("Speaker")).to_have_count(0)
    page.get_by_label("Promo code").fill("speakers")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Unlocked by your code")).to_be_visible()
    shot("revealed")
    page.get_by_label("Quantity of Speaker").fill("1")
    page.get_by_role("button", name="Get tickets").click()
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    session = CheckoutSession.objects.get()
    assert session.line_items.get().ticket_type == speaker and session.promo_code == code


@pytest.mark.parametrize(("language", "words"), [
    ("en", ("Promo code", "Apply", "The promo code “ONCE” has been used up.")),
    ("pt-PT", ("Código promocional", "Aplicar", "O código promocional “ONCE” já foi totalmente utilizado.")),
])
def test_a_used_up_code_is_refused_in_both_languages(new_page, shot, event, language, words):
    label, apply, refusal = words
    PromoCode.objects.create(event=event, code="ONCE", percent_off=50, max_uses=1)
    services.create_session(event, [services.Item(event.ticket_types.get(), 1)],
                            promo_code=promo.check_code(event, "once"))
    page = new_page(locale=language)
    page.goto(event.get_absolute_url())
    page.get_by_label(label).fill("once")
    page.get_by_role("button", name=apply).click()
    expect(page.get_by_role("alert")).to_have_text(refusal)
    expect(page.locator(".ticket-row s")).to_have_count(0)  # no discount shown
    shot("refused")
    assert CheckoutSession.objects.count() == 1
