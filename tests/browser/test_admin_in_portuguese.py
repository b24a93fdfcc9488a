"""The back office walked in Portuguese in Chromium: an event priced 18,50, an order found
and refunded 12,50 — every page with no English sentence of ours (the catalog check of
``tests/admin/test_admin_in_portuguese.py``) and no serious axe violation. The Portuguese
screenshots in docs/admin.md come from this walk (``test-artifacts/<test>/``)."""


import pytest
from playwright.sync_api import expect

from checkout.models import CheckoutSession, Status
from ievents.models import Event
from payments.models import IntegrationSettings
from tests.admin.test_admin_in_portuguese import catalog_sentences, english_of_ours
from tests.browser.admin_pages import log_in
from tests.browser.axe import serious_violations
from tests.refunds.helpers import paid_order

pytestmark = pytest.mark.django_db(transaction=True)



def checked(page, state: str, shot, sentences) -> None:
    """No English sentence of ours, no serious or critical axe violation; a screenshot."""
    leaks = english_of_ours(page.content(), sentences)
    assert not leaks, f"English on {state}: {leaks}"
    serious = serious_violations(page)
    assert not serious, f"axe on {state}: {serious}"
    shot(state, page)


def test_a_portuguese_organizer_prices_finds_and_refunds_an_order_in_portuguese(new_page, shot, organizer,
                                                                                 organization):
    IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox", defaults={"enabled": True})
    sentences = catalog_sentences()
    page = new_page(width=1280, height=900, locale="pt-PT")  # the browser's Accept-Language
    log_in(page)
    expect(page.get_by_role("heading", name="Resumo")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "pt-pt")

    # A new event, priced as Portugal writes it.
    page.goto("/admin/ievents/event/add/")
    page.locator("input[name=name_pt_pt]").fill("Noite de Dados do Porto")
    page.locator("input[name=starts_at_0]").fill("2030-05-17")
    page.locator("input[name=starts_at_1]").fill("19:30:00")
    page.locator("input[name=venue]").fill("Alfândega do Porto")
    page.locator("#ticket_types-group .add-row a").click()
    row = page.locator("tr.form-row.dynamic-ticket_types").first
    row.locator("input[name$=-name_pt_pt]").fill("Normal")
    row.locator("input[name$=-price]").fill("18,50")
    row.locator("input[name$=-quantity]").fill("40")
    # The event form fits a laptop's width: nothing scrolls sideways.
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    checked(page, "event-form", shot, sentences)
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_be_visible()
    event = Event.objects.get(name_pt_pt="Noite de Dados do Porto")
    assert event.ticket_types.get().price == 1850

    session, _ = paid_order(event, provider="sandbox", reference="pay_sbx_pt")  # two tickets, 37,00 €
    page.goto("/admin/")
    card = page.locator("article.overview-event", has_text="Noite de Dados do Porto")
    expect(card.locator("table.overview-types tbody tr", has_text="Normal").locator("td").first).to_have_text("18,50 €")
    expect(card.locator(".overview-figures")).to_contain_text("37,00 €")
    checked(page, "overview", shot, sentences)

    # The order, found by its email.
    page.goto("/admin/checkout/checkoutsession/")
    expect(page.get_by_role("heading", name="Encomendas")).to_be_visible()
    page.locator("#searchbar").fill(session.customer_email)
    page.locator("#searchbar").press("Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    checked(page, "orders", shot, sentences)
    page.get_by_role("link", name=session.public_id).click()
    expect(page.get_by_role("heading", name=f"Encomenda {session.public_id}")).to_be_visible()
    checked(page, "order", shot, sentences)

    # Refunded 12,50, typed as Portugal writes it.
    page.get_by_role("link", name="Reembolsar").click()
    checked(page, "refund-form", shot, sentences)
    page.locator("input[name=amount]").fill("12,50")
    page.locator("textarea[name=note]").fill("Uma pessoa não pode ir.")
    page.locator("input[type=submit][value=Reembolsar]").click()
    expect(page.locator(".messagelist")).to_contain_text("Reembolsado 12,50 €.")
    session.refresh_from_db()
    assert (session.status, session.amount_refunded) == (Status.PARTIALLY_REFUNDED, 1250)
    expect(page.locator(".order-section").first).to_contain_text("12,50 €")
    checked(page, "order-refunded", shot, sentences)
    assert CheckoutSession.objects.count() == 1
