"""The organizer writes an event in English and Portuguese side by side in the admin (the
form still fits 1280 px), and a Portuguese attendee reads the Portuguese names."""

import pytest
from playwright.sync_api import expect

from ievents.models import Event
from payments.models import IntegrationSettings
from tests.browser.admin_pages import fill_new_event, log_in

pytestmark = pytest.mark.django_db(transaction=True)


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_event_in_both_languages_from_the_admin_to_a_portuguese_attendee(page, new_page, shot, organizer,
                                                                            organization):
    IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox")
    log_in(page, shot=shot)
    page.goto("/admin/ievents/event/add/")
    fill_new_event(page, organization, name="Porto Data Night", name_pt="Noite de Dados do Porto",
                   ticket_pt="Normal")
    page.get_by_label("Description in Portuguese:").fill("Palestras e conversa.")
    page.get_by_text("Add another Question").click()
    question = page.locator("tr.form-row.dynamic-questions").first
    question.locator("input[name$=-text_en]").fill("T-shirt size")
    question.locator("input[name$=-text_pt_pt]").fill("Tamanho da T-shirt")
    # Both names on one line, and the whole form within a 1280 px screen.
    english, portuguese = page.get_by_label("Name in English:"), page.get_by_label("Name in Portuguese:")
    assert abs(english.bounding_box()["y"] - portuguese.bounding_box()["y"]) < 5
    assert fits(page), "the event form is wider than the screen"
    shot("event-both-languages")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    event = Event.objects.get(name_en="Porto Data Night")
    assert event.name_pt_pt == "Noite de Dados do Porto"
    page.goto(f"/admin/ievents/event/{event.pk}/change/")
    assert fits(page), "the event's change form (with its rows) is wider than the screen"

    attendee = new_page(locale="pt-PT")
    attendee.goto(event.get_absolute_url())
    expect(attendee.get_by_role("heading", name="Noite de Dados do Porto")).to_be_visible()
    expect(attendee.get_by_text("Normal", exact=True)).to_be_visible()
    expect(attendee.get_by_text("Palestras e conversa.")).to_be_visible()
    shot("attendee-pt", attendee)
