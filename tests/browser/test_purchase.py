"""A purchase through the sandbox, in a real browser (Debian's Chromium), against a live server.

These are the issue's "Done when": event page → tickets → attendee form → review → sandbox
page → status page with the ticket codes. Screenshots of each step land in
``test-artifacts/<test name>/``.
"""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from checkout.models import CheckoutSession, Status
from payments.models import Payment
from tests.conftest import make_event

CODE = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}")


def choose_tickets(page, shot, event, quantity=2):
    page.goto(event.get_absolute_url())
    expect(page.get_by_role("heading", name=event.name)).to_be_visible()
    shot("event")
    page.get_by_label("Quantity of General").fill(str(quantity))
    page.get_by_role("button", name="Get tickets").click()
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()


def fill_details(page, shot, *, name="Ana Silva", email="ana@example.com"):
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Company", exact=True).fill("Acme <b>Labs</b>")
    page.get_by_label("T-shirt size", exact=True).select_option("M")
    shot("details")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()


def pay_with_sandbox(page, shot):
    page.get_by_label("Sandbox").check()
    shot("review")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Sandbox payment")).to_be_visible()
    shot("sandbox")


def test_a_sandbox_purchase_completes_in_the_browser_with_ticket_codes(page, shot, event):
    choose_tickets(page, shot, event)
    fill_details(page, shot)
    # The review shows what was typed, escaped: the answer is text, not markup.
    expect(page.get_by_text("Acme <b>Labs</b>")).to_be_visible()
    pay_with_sandbox(page, shot)

    page.get_by_role("button", name="Simulate success").click()
    expect(page.get_by_role("heading", name="You're going!")).to_be_visible()
    shot("tickets")

    session = CheckoutSession.objects.get()
    assert session.status == Status.COMPLETED
    assert page.url.endswith(f"/c/{session.public_id}/status/")
    codes = sorted(t.code for t in session.tickets.all())
    assert len(codes) == 2 and all(CODE.fullmatch(code) for code in codes)
    shown = sorted(page.locator(".ticket-code").all_inner_texts())
    assert shown == codes
    assert session.customer_name == "Ana Silva" and session.customer_email == "ana@example.com"
    assert len(mail.outbox) == 1 and all(code in mail.outbox[0].body for code in codes)


def test_a_failed_payment_shows_an_alert_and_trying_again_succeeds(page, shot, event):
    choose_tickets(page, shot, event, quantity=1)
    fill_details(page, shot)
    pay_with_sandbox(page, shot)

    page.get_by_role("button", name="Simulate failure").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("did not go through")
    shot("failed")
    session = CheckoutSession.objects.get()
    assert session.status == Status.REJECTED
    assert not session.tickets.exists()

    page.get_by_role("link", name="Try again").click()
    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    pay_with_sandbox(page, shot)
    page.get_by_role("button", name="Simulate success").click()
    expect(page.get_by_role("heading", name="You're going!")).to_be_visible()
    shot("tickets")

    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    assert page.locator(".ticket-code").count() == 1
    outcomes = [p.instructions.get("sandbox_outcome") for p in Payment.objects.filter(session=session).order_by("id")]
    assert outcomes == ["failure", "success"]


def test_a_sold_out_event_says_so_and_sells_nothing(page, shot, organization):
    event = make_event(organization, quantity=0)
    page.goto(event.get_absolute_url())
    expect(page.get_by_role("status")).to_have_text("This event is sold out.")
    expect(page.get_by_text("Sold out", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Get tickets")).to_have_count(0)
    expect(page.get_by_label("Quantity of General")).to_have_count(0)
    shot("sold-out")
    assert CheckoutSession.objects.count() == 0


def test_a_sold_out_ticket_type_leaves_the_others_on_sale(page, shot, organization):
    from ievents.models import TicketType

    event = make_event(organization, quantity=0)
    TicketType.objects.create(event=event, name="Late bird", price=4000, quantity=3, max_per_order=10)
    page.goto(event.get_absolute_url())
    expect(page.get_by_label("Quantity of General")).to_have_count(0)
    expect(page.get_by_text("3 left")).to_be_visible()
    page.get_by_label("Quantity of Late bird").fill("2")
    shot("one-sold-out")
    page.get_by_role("button", name="Get tickets").click()
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    session = CheckoutSession.objects.get()
    assert [(i.ticket_type.name, i.quantity) for i in session.line_items.all()] == [("Late bird", 2)]


def test_the_last_ticket_taken_while_the_page_was_open_shows_an_alert(page, shot, organization):
    from checkout import services

    event = make_event(organization, quantity=1)
    ticket_type = event.ticket_types.get()
    page.goto(event.get_absolute_url())
    page.get_by_label("Quantity of General").fill("1")
    # Another buyer takes the last ticket between page load and submit.
    services.create_session(event, [services.Item(ticket_type, 1)])
    page.get_by_role("button", name="Get tickets").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("General")
    expect(alert).to_contain_text("left")
    shot("taken")
    assert CheckoutSession.objects.count() == 1
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 1


def assert_no_horizontal_overflow(page):
    overflow = page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const wide = [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > width + 1)
            .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''));
        return {scroll: document.documentElement.scrollWidth, width, wide};
    }""")
    assert overflow["scroll"] <= overflow["width"] and not overflow["wide"], overflow


@pytest.mark.parametrize("long_name", [False, True], ids=["plain", "long-unbroken-text"])
def test_every_checkout_page_fits_a_375px_phone(mobile_page, shot, organization, long_name):
    name = "Summit" if not long_name else "Internationalisierungskonferenzveranstaltungsreihe" * 2
    event = make_event(organization, name=name)
    page = mobile_page
    choose_tickets(page, shot, event)
    assert_no_horizontal_overflow(page)
    email = "a.very.long.address.that.keeps.going@subdomain.example.com" if long_name else "ana@example.com"
    fill_details(page, shot, email=email)
    assert_no_horizontal_overflow(page)
    page.get_by_label("Sandbox").check()
    assert_no_horizontal_overflow(page)
    page.get_by_role("button", name="Pay").click()
    shot("sandbox")
    assert_no_horizontal_overflow(page)
    for label in ("Simulate success", "Simulate failure"):  # thumb-sized touch targets
        assert page.get_by_role("button", name=label).bounding_box()["height"] >= 44
    page.get_by_role("button", name="Simulate success").click()
    expect(page.get_by_role("heading", name="You're going!")).to_be_visible()
    shot("tickets")
    assert_no_horizontal_overflow(page)
