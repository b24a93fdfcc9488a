"""A summer evening typed in the admin is the same evening everywhere: the attendee's page,
the ticket email, the calendar file and the export (issue 22: times in the event's zone)."""

import csv
import io
import re
import zoneinfo
from datetime import UTC, datetime

import pytest
from django.core import mail
from playwright.sync_api import expect

from checkout.models import CheckoutSession, Status
from ievents.models import Event
from payments.models import IntegrationSettings
from tests.browser.admin_pages import choose_organization, log_in

LISBON = zoneinfo.ZoneInfo("Europe/Lisbon")


@pytest.fixture
def organizer(organizer, organization):
    IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox")
    return organizer


def test_a_summer_evening_typed_in_the_admin_reads_the_same_everywhere(page, new_page, shot, site, organizer,
                                                                       organization):
    log_in(page)

    page.goto("/admin/ievents/event/add/")
    choose_organization(page, organization)
    page.get_by_label("Name in English:").fill("Fado at the castle")
    page.locator("input[name=starts_at_0]").fill("2027-07-10")
    page.locator("input[name=starts_at_1]").fill("20:00:00")
    # The zone the time is read in is written beside it.
    expect(page.locator(".field-starts_at .time-zone")).to_contain_text("Europe/Lisbon")
    page.get_by_text("Add another Ticket type").click()
    row = page.locator("tr.form-row.dynamic-ticket_types").first
    row.locator("input[name$=-name_en]").fill("Standing")
    row.locator("input[name$=-price]").fill("18")
    row.locator("input[name$=-quantity]").fill("40")
    shot("event-typed")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    event = Event.objects.get(name="Fado at the castle")
    assert event.starts_at == datetime(2027, 7, 10, 19, 0, tzinfo=UTC)  # 20:00 WEST
    # Shown back as typed, on the event's clock, with the zone's summer abbreviation.
    expect(page.locator("input[name=starts_at_1]")).to_have_value("20:00:00")
    expect(page.locator(".field-starts_at .time-zone")).to_contain_text("WEST")
    shot("event-saved")

    attendee = new_page()
    attendee.goto(site + event.get_absolute_url())
    expect(attendee.locator(".event-meta")).to_contain_text("10 July 2027, 20:00 WEST")
    shot("attendee-event", attendee)
    attendee.get_by_label("Quantity of Standing").fill("1")
    attendee.get_by_role("button", name="Get tickets").click()
    attendee.get_by_label("Name", exact=True).fill("Rui Costa")
    attendee.get_by_label("Email", exact=True).fill("rui@example.com")
    attendee.get_by_role("button", name="Continue").click()
    attendee.get_by_role("button", name="Pay").click()
    attendee.get_by_role("button", name="Simulate success").click()
    expect(attendee.get_by_role("heading", name="You're going!")).to_be_visible()
    session = CheckoutSession.objects.get(event=event)
    assert session.status == Status.COMPLETED

    (email,) = mail.outbox
    assert "10 July 2027, 20:00 WEST" in email.body
    ics = attendee.request.get(site + f"/c/{session.public_id}/calendar.ics").text()
    start = re.search(r"DTSTART:(\d{8}T\d{6})Z", ics).group(1)
    assert datetime.strptime(start, "%Y%m%dT%H%M%S").replace(tzinfo=UTC).astimezone(LISBON).strftime(
        "%Y-%m-%d %H:%M") == "2027-07-10 20:00"
    attached = [item[1] for item in email.attachments if isinstance(item, tuple) and item[2] == "text/calendar"]
    assert attached and f"DTSTART:{start}Z" in attached[0]

    page.goto("/admin/checkout/checkoutsession/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    with open(download.value.path(), encoding="utf-8-sig", newline="") as exported:
        (row,) = list(csv.DictReader(io.StringIO(exported.read())))
    assert (row["Event starts"], row["Time zone"]) == ("2027-07-10 20:00", "Europe/Lisbon")
    # The order's own times: the export and the orders list read the same clock.
    created = session.created_at.astimezone(LISBON)
    assert row["Created"] == created.strftime("%Y-%m-%d %H:%M")
    expect(page.locator("#result_list")).to_contain_text(f"{created:%H:%M} {created.tzname()}")
