"""An organizer in the admin, in a real browser: log in, create an event with a ticket type
and a question through the inlines' "Add another" links, sell it, and see the session's
history — while another organization's objects stay out of sight."""

import pytest
from playwright.sync_api import expect

from checkout.models import CheckoutSession, Status
from ievents.models import Event
from payments.models import IntegrationSettings
from tests.browser.admin_pages import fill_new_event, log_in
from tests.conftest import make_event


@pytest.fixture
def organizer(organizer, organization):
    """The shared organizer, whose organization takes sandbox payments."""
    IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox")
    return organizer


def test_an_organizer_creates_an_event_in_admin_and_an_attendee_buys_a_ticket(page, shot, organizer, organization,
                                                                               other_organization, new_page):
    make_event(other_organization, name="Rival Gala")
    log_in(page, shot=shot)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    page.goto("/admin/ievents/event/add/")
    # The organizer's one organization is chosen for them: nothing to pick, nobody else's to see.
    assert page.locator("select[name=organization]").count() == 0
    assert page.locator("input[name=organization]").input_value() == str(organization.pk)
    fill_new_event(page, organization)
    page.get_by_text("Add another Question").click()
    question = page.locator("tr.form-row.dynamic-questions").first
    question.locator("input[name$=-text_en]").fill("Dietary needs")
    shot("new-event")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    shot("saved")

    event = Event.objects.get(name="Porto Data Night")
    assert event.organization == organization
    assert [(t.name, t.price, t.quantity) for t in event.ticket_types.all()] == [("Standard", 1500, 40)]
    assert [q.text for q in event.questions.all()] == ["Dietary needs"]
    # The list shows this organization's events only.
    page.goto("/admin/ievents/event/")
    expect(page.get_by_role("link", name="Porto Data Night")).to_be_visible()
    expect(page.get_by_text("Rival Gala")).to_have_count(0)

    attendee = new_page()
    attendee.goto(event.get_absolute_url())
    attendee.get_by_label("Quantity of Standard").fill("1")
    attendee.get_by_role("button", name="Get tickets").click()
    attendee.get_by_label("Name", exact=True).fill("Rui Costa")
    attendee.get_by_label("Email", exact=True).fill("rui@example.com")
    attendee.get_by_label("Dietary needs", exact=True).fill("vegetarian")
    attendee.get_by_role("button", name="Continue").click()
    attendee.get_by_role("button", name="Pay").click()
    attendee.get_by_role("button", name="Simulate success").click()
    expect(attendee.get_by_role("heading", name="You're going!")).to_be_visible()

    session = CheckoutSession.objects.get(event=event)
    assert session.status == Status.COMPLETED
    page.goto(f"/admin/checkout/checkoutsession/{session.pk}/change/")
    expect(page.get_by_text("rui@example.com").first).to_be_visible()
    expect(page.get_by_text("vegetarian").first).to_be_visible()
    history = page.locator(".order-history")
    for step in ("Payment started with Sandbox (test payments)", "Paid €15.00", "Completed: tickets issued"):
        expect(history.get_by_text(step, exact=True)).to_be_visible()
    # Read-only: no input to change the status, no delete link.
    assert page.locator("select[name=status], input[name=status]").count() == 0
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
    shot("session")


def test_another_organizations_event_is_not_found_in_admin(page, shot, organizer, other_organization):
    theirs = make_event(other_organization, name="Rival Gala")
    log_in(page, shot=shot)
    page.goto(f"/admin/ievents/event/{theirs.pk}/change/")
    # Django's admin answers a hidden object with a redirect to the index and a message.
    expect(page.locator(".messagelist")).to_contain_text("doesn’t exist")
    expect(page.get_by_text("Rival Gala")).to_have_count(0)
    shot("not-found")


def test_a_wrong_password_keeps_the_organizer_out(page, shot, organizer):
    log_in(page, password="not-the-password", shot=shot)
    expect(page.locator(".errornote")).to_contain_text("Please enter the correct username and password")
    page.goto("/admin/ievents/event/")
    assert "/admin/login/" in page.url
