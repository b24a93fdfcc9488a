"""Paying with Stripe, Easypay and Ifthenpay in a real browser, as far as it runs offline.

The providers' APIs are mocked inside the server process with ``responses`` (the live
server runs in this process, so its outbound calls are intercepted; the browser's are
not touched). Stripe's hosted page cannot be reached offline, so the mocked Checkout
Session sends the browser straight back to our return URL, as Stripe does after a
payment; Multibanco is paid "at the ATM" by the provider's notification; MB WAY is
confirmed "on the phone" while the status page waits and refreshes itself.
"""

import json

import pytest
import responses
from playwright.sync_api import expect

from checkout.models import CheckoutSession, Status
from payments.models import Payment
from tests.browser.test_purchase import choose_tickets, fill_details
from tests.payments.helpers import EASYPAY_API, IFTHENPAY_API, configure, easypay_notification, easypay_single

pytestmark = pytest.mark.django_db(transaction=True)
EP_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
def mocked_providers():
    """Any call the server makes through ``requests`` that is not registered fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_stripe_card_payment_returns_to_the_tickets(page, shot, site, organization, event, mocked_providers):
    configure(organization, "stripe", secret="whsec_x", credentials={"secret_key": "sk_test_browser"})

    def create_session(request):
        payment = Payment.objects.get()
        back = f"{site}/c/{payment.session.public_id}/return/?payment={payment.public_id}"
        return 200, {}, json.dumps({"id": "cs_test_browser", "object": "checkout.session", "url": back})

    mocked_providers.add_callback(responses.POST, "https://api.stripe.com/v1/checkout/sessions", callback=create_session)
    choose_tickets(page, shot, event)
    fill_details(page, shot)
    session = CheckoutSession.objects.get()
    mocked_providers.get("https://api.stripe.com/v1/checkout/sessions/cs_test_browser", json={
        "id": "cs_test_browser", "object": "checkout.session", "status": "complete", "payment_status": "paid",
        "client_reference_id": session.public_id, "amount_total": session.amount_total, "currency": "eur"})
    page.get_by_label("Card (Stripe)").check()
    shot("review")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="You're going!")).to_be_visible()
    shot("tickets")
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.tickets.count() == 2


def test_easypay_multibanco_shows_the_reference_then_the_tickets_once_paid(page, shot, client, organization, event,
                                                                          mocked_providers):
    configure(organization, "easypay", secret="ep-browser-secret-1", credentials={"account_id": "a", "api_key": "k"})
    mocked_providers.post(f"{EASYPAY_API}/single", status=201, json={
        "status": "ok", "id": EP_ID, "method": {"type": "mb", "status": "pending", "entity": 21098,
                                                "reference": "702358145"}})
    choose_tickets(page, shot, event)
    fill_details(page, shot)
    page.get_by_label("Multibanco or MB WAY (Easypay)").check()
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Waiting for your payment")).to_be_visible()
    for text in ("21098", "702358145", "€50.00"):
        expect(page.get_by_text(text, exact=False).first).to_be_visible()
    expect(page.get_by_text("Pay by", exact=True)).to_be_visible()
    shot("multibanco-reference")

    # The attendee pays at an ATM; Easypay notifies us and we ask its API.
    mocked_providers.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, value=50.0))
    response = client.post(f"/api/webhooks/easypay/{organization.public_id}?secret=ep-browser-secret-1",
                           data=json.dumps(easypay_notification(EP_ID)), content_type="application/json")
    assert response.status_code == 200
    expect(page.get_by_role("heading", name="You're going!")).to_be_visible(timeout=15_000)  # the page refreshes
    shot("tickets")


def test_ifthenpay_mbway_asks_for_the_phone_and_waits_for_the_app(page, shot, organization, event, mocked_providers):
    configure(organization, "ifthenpay", secret="anti-phishing-browser", credentials={"mbway_key": "MBW-1"})
    mocked_providers.post(f"{IFTHENPAY_API}/spg/payment/mbway", json={
        "Amount": "50.00", "Message": "Pending", "OrderId": "x", "RequestId": "REQ-browser", "Status": "000"})
    status = mocked_providers.get(f"{IFTHENPAY_API}/spg/payment/mbway/status", json={"Status": "123"})
    choose_tickets(page, shot, event)
    fill_details(page, shot)
    page.get_by_label("Multibanco or MB WAY (Ifthenpay)").check()
    page.get_by_label("Phone (MB WAY)").fill("912 345 678")
    shot("review-mbway")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_text("Confirm the payment in the MB WAY app")).to_be_visible()
    shot("waiting")
    sent = json.loads(mocked_providers.calls[0].request.body)
    assert sent["mobileNumber"] == "351#912345678"

    # The attendee confirms in the app: the next refresh of the page finds it paid.
    mocked_providers.replace(responses.GET, status.url, json={"Status": "000"})
    expect(page.get_by_role("heading", name="You're going!")).to_be_visible(timeout=15_000)
    shot("tickets")
    assert CheckoutSession.objects.get().status == Status.COMPLETED
