"""An organizer acts on an order in a real browser: refund half, then the rest; resend the
tickets. The order is made by the services (a sandbox payment), the rest is the admin."""

import pytest
from django.core import mail
from playwright.sync_api import expect

from checkout import attendee_emails
from checkout.models import CheckoutSession, Status
from payments.models import IntegrationSettings
from tests.browser.admin_pages import log_in
from tests.refunds.helpers import paid_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def order(organization, event, organizer):
    IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox")
    session, _ = paid_order(event, provider="sandbox", reference="pay_browser_1")
    CheckoutSession.objects.filter(pk=session.pk).update(customer_name="Ana Silva")
    return session


def test_an_organizer_refunds_half_then_the_rest_and_resends_the_tickets(page, shot, order):
    log_in(page, shot=shot)
    page.goto(f"/admin/checkout/checkoutsession/{order.pk}/change/")
    page.get_by_role("link", name="Refund", exact=True).click()
    expect(page.get_by_role("row", name="Left to refund €50.00")).to_be_visible()
    page.get_by_label("Amount to refund").fill("25.00")
    page.get_by_label(order.tickets.first().code).check()
    page.get_by_label("Put the voided tickets back on sale").check()
    page.get_by_label("Note").fill("One of the two cannot come")
    shot("refund-dialog")
    page.get_by_role("button", name="Refund").click()
    expect(page.locator(".messagelist")).to_contain_text("Refunded €25.00.")
    expect(page.get_by_text("Refunded €25.00 by ana: One of the two cannot come").first).to_be_visible()
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Status.PARTIALLY_REFUNDED, 2500)

    page.get_by_role("link", name="Refund", exact=True).click()
    expect(page.get_by_label("Amount to refund")).to_have_value("25.00")  # the rest
    page.get_by_role("button", name="Refund").click()
    expect(page.locator(".messagelist")).to_contain_text("Refunded €25.00.")
    expect(page.get_by_role("link", name="Refund", exact=True)).to_have_count(0)  # nothing left to refund
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Status.REFUNDED, 5000)
    shot("refunded")


def test_an_organizer_resends_the_tickets_to_a_corrected_address(page, shot, order):
    log_in(page, shot=shot)
    page.goto(f"/admin/checkout/checkoutsession/{order.pk}/change/")
    page.get_by_role("link", name="Resend tickets").click()
    page.get_by_label("Send to").fill("ana.silva@example.org")
    shot("resend")
    page.get_by_role("button", name="Resend tickets").click()
    expect(page.locator(".messagelist")).to_contain_text("The tickets are being sent again to ana.silva@example.org.")
    attendee_emails.sweep()  # what the worker's beat runs: the notice to the old address, the tickets to the new
    assert [m.to for m in mail.outbox] == [["ana@example.com"], ["ana.silva@example.org"]]
    page.reload()  # the order's history shows both emails
    expect(page.get_by_role("cell", name="Address corrected (notice to the old one)", exact=True)).to_be_visible()
    order.refresh_from_db()
    assert order.customer_email == "ana.silva@example.org"
