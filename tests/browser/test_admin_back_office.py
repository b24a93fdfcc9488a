"""The organizer's back office in a real browser: an event priced in euros, sold, seen on the
overview, its order found by a ticket code and exported; a Viewer changes nothing; a Manager
sees no secret. The screenshots in docs/admin.md come from this walk
(``test-artifacts/<test>/``)."""

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from checkout.models import CheckoutSession, Status
from ievents.models import Event, Membership
from payments.models import IntegrationSettings
from tests.browser.admin_pages import fill_new_event, log_in
from tests.conftest import make_event, make_organizer
from tests.servers import LocalServer, Reply
from webhooks.models import GateSettings, WebhookEndpoint

CODE = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}")


@pytest.fixture
def organizer(organizer, organization):
    IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox")
    return organizer


def log_in_to_overview(page, username):
    log_in(page, username)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def member(organization, username, role):
    user = make_organizer(organization, username=username)
    Membership.objects.filter(user=user).update(role=role)
    return user


def buy_one(attendee, event):
    attendee.goto(event.get_absolute_url())
    attendee.get_by_label("Quantity of Standard").fill("2")
    attendee.get_by_role("button", name="Get tickets").click()
    attendee.get_by_label("Name", exact=True).fill("Rui Costa")
    attendee.get_by_label("Email", exact=True).fill("rui@example.com")
    attendee.get_by_label("Dietary needs", exact=True).fill("=cmd|' /C calc'!A0")  # a spreadsheet formula
    attendee.get_by_role("button", name="Continue").click()
    attendee.get_by_role("button", name="Pay").click()
    attendee.get_by_role("button", name="Simulate success").click()
    expect(attendee.get_by_role("heading", name="You're going!")).to_be_visible()
    return CODE.findall(attendee.content())


def test_an_organizer_prices_in_euros_sells_finds_the_order_by_a_ticket_code_and_exports_it(
        page, new_page, shot, organizer, organization):
    log_in_to_overview(page, "ana")
    page.goto("/admin/ievents/event/add/")
    fill_new_event(page, organization)
    page.locator("tr.form-row.dynamic-ticket_types input[name$=-price]").first.fill("18.50")
    page.get_by_text("Add another Question").click()
    page.locator("tr.form-row.dynamic-questions input[name$=-text_en]").first.fill("Dietary needs")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    event = Event.objects.get(name="Porto Data Night")
    assert event.ticket_types.get().price == 1850  # typed in euros, kept in cents

    codes = buy_one(new_page(), event)
    assert len(codes) == 2
    session = CheckoutSession.objects.get(event=event)
    assert session.status == Status.COMPLETED

    # The overview: sold, held, available, revenue.
    page.goto("/admin/")
    card = page.locator("article.overview-event", has_text="Porto Data Night")
    row = card.locator("table.overview-types tbody tr", has_text="Standard")
    expect(row.locator("td")).to_have_text(["€18.50", "2", "0", "38", "40"])
    expect(card.locator(".overview-figures")).to_contain_text("€37.00")
    shot("overview")

    # Found by a ticket code, typed in lower case.
    page.goto("/admin/checkout/checkoutsession/")
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    page.locator("#searchbar").fill(codes[1].lower())
    page.locator("#searchbar").press("Enter")
    results = page.locator("#result_list tbody tr")
    expect(results).to_have_count(1)
    for column in ("Completed", "Rui Costa", "rui@example.com", "Porto Data Night", "€37.00"):
        expect(results).to_contain_text(column)
    # Every column is in view at a laptop's width: nothing scrolls sideways.
    assert page.evaluate("() => { const r = document.querySelector('.results');"
                         " return r.scrollWidth <= r.clientWidth; }")
    last = page.locator("#result_list thead th.column-attention").bounding_box()
    assert last["x"] + last["width"] <= page.viewport_size["width"]
    shot("orders-found-by-ticket-code")

    # Exported as the list shows it: one row per ticket.
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8-sig", newline="").read())))
    assert sorted(r["Ticket code"] for r in rows) == sorted(codes)
    assert {(r["Order id"], r["Ticket price"], r["Email"]) for r in rows} == {
        (session.public_id, "18.50", "rui@example.com")}
    assert [r["Order paid"] for r in rows] == ["37.00", ""]  # the order's money once, on its first row
    assert rows[0]["Dietary needs"] == "'=cmd|' /C calc'!A0"  # text, not a formula

    # The order reads like an order.
    results.get_by_role("link", name=session.public_id).click()
    expect(page.get_by_role("heading", name=f"Order {session.public_id}")).to_be_visible()
    for code in codes:
        expect(page.locator(".order-tickets").get_by_text(code)).to_be_visible()
    history = page.locator(".order-history")
    for step in ("Payment started with Sandbox (test payments)", "Paid €37.00", "Completed: tickets issued"):
        expect(history.get_by_text(step, exact=True)).to_be_visible()
    technical = page.locator("details", has_text="Technical details")
    expect(technical.get_by_text("Gate approved fingerprint")).not_to_be_visible()  # folded away
    shot("order")


def test_a_viewer_reads_but_cannot_change(page, shot, organization):
    event = make_event(organization, name="Jazz Night")
    member(organization, "vera", "viewer")
    log_in_to_overview(page, "vera")
    expect(page.locator("article.overview-event", has_text="Jazz Night")).to_be_visible()
    page.goto(f"/admin/ievents/event/{event.pk}/change/")
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    expect(page.locator("input[name=name]")).to_have_count(0)
    page.goto("/admin/ievents/event/add/")
    expect(page.get_by_text("403 Forbidden")).to_be_visible()
    page.goto("/admin/checkout/checkoutsession/")
    expect(page.get_by_role("link", name="Export CSV")).to_be_visible()  # reading is allowed
    shot("viewer")


def test_a_manager_never_sees_a_secret(page, shot, organization):
    IntegrationSettings.objects.create(organization=organization, provider="stripe",
                                       credentials='{"secret_key": "sk_test_do_not_show_1234"}')
    event = make_event(organization, name="Jazz Night")
    gate = GateSettings.objects.create(event=event, url="https://gate.example.com/", enabled=True)
    member(organization, "mario", "manager")
    log_in_to_overview(page, "mario")
    nav = page.locator("#content-main")
    expect(nav.get_by_role("link", name="Payments", exact=True)).to_have_count(0)
    expect(nav.get_by_role("link", name="API keys")).to_have_count(0)
    page.goto("/admin/payments/integrationsettings/")
    assert "sk_test" not in page.content()

    page.goto(f"/admin/ievents/event/{event.pk}/change/")
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_visible()  # a manager edits events
    assert gate.secret not in page.content()

    page.goto("/admin/webhooks/webhookendpoint/add/")
    page.get_by_label("URL:").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Every event (also types added later)").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret not in page.content() and page.locator(".secret-box").count() == 0
    shot("manager")


def test_an_owner_copies_a_new_secret_from_its_box_and_tests_the_gate_from_the_event(
        page, shot, organizer, organization):
    event = make_event(organization, name="Jazz Night")
    log_in_to_overview(page, "ana")
    # A new endpoint's secret: in a box with a copy button, shown this once.
    page.goto("/admin/webhooks/webhookendpoint/add/")
    page.get_by_label("URL:").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Every event (also types added later)").check()
    page.get_by_role("button", name="Save", exact=True).click()
    box = page.locator(".secret-box")
    expect(box.locator("input.secret-value")).to_have_value(WebhookEndpoint.objects.get().secret)
    box.get_by_role("button", name="Copy").click()
    expect(box.get_by_role("button", name="Copied")).to_be_visible()
    shot("secret-shown-once")
    page.get_by_role("link", name="I have copied it — continue").click()
    assert WebhookEndpoint.objects.get().secret not in page.content()

    # The gate: typed in, on by default, tested with a button on the event's page.
    with LocalServer(Reply(403, {"message": "Members only"})) as gate_server:
        page.goto(f"/admin/ievents/event/{event.pk}/change/")
        page.get_by_text("Add another pre-payment gate").click()
        gate_form = page.locator("#gate-0")
        expect(gate_form.get_by_label("Enabled")).to_be_checked()
        gate_form.get_by_label("URL:").fill(gate_server.url)
        page.get_by_role("button", name="Save and continue editing").click()
        page.get_by_role("link", name="I have copied it — continue").click()
        page.get_by_role("button", name="Send test request").click()
        expect(page.locator(".attendee-sees")).to_have_text("Members only")
        expect(page.get_by_text("HTTP 403")).to_be_visible()
        shot("gate-test")
    assert len(gate_server.requests) == 1
