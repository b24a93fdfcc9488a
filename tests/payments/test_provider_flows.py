"""Paying through each provider's flow from the review page, the provider's API mocked with
``responses`` (the only thing mocked): what we send them, what the attendee sees."""

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import responses
from django.utils import timezone

from checkout import services
from checkout.models import Status
from payments.models import Payment

from .helpers import EASYPAY_API, IFTHENPAY_API, configure, easypay_single

pytestmark = pytest.mark.django_db
EP_ID = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"


def _ready(event, quantity=2):
    """A session whose attendee filled in the form: the review page offers payment."""
    session = services.create_session(event, [services.Item(event.ticket_types.get(), quantity)])
    return services.save_attendee_details(session, name="Ana Silva", email="ana@example.com", answers={})


def _pay(client, session, provider, phone=""):
    return client.post(f"/c/{session.public_id}/review/", {"provider": provider, "phone": phone})


# --- Stripe ----------------------------------------------------------------------------------
@pytest.fixture
def stripe_event_(organization, event):
    configure(organization, "stripe", secret="whsec_x", credentials={"secret_key": "sk_test_tenant_key"})
    return event


@responses.activate
def test_stripe_checkout_carries_our_session_id_and_completes_on_return(client, stripe_event_):
    session = _ready(stripe_event_)
    responses.post("https://api.stripe.com/v1/checkout/sessions",
                   json={"id": "cs_test_1", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_1"})
    response = _pay(client, session, "stripe")
    assert response.status_code == 302 and response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_1"
    sent = responses.calls[0].request
    form = {k: v[0] for k, v in parse_qs(sent.body).items()}
    assert form["client_reference_id"] == session.public_id
    assert form["metadata[checkout_session]"] == session.public_id
    assert form["payment_intent_data[metadata][checkout_session]"] == session.public_id
    assert form["line_items[0][price_data][unit_amount]"] == "2500" and form["line_items[0][quantity]"] == "2"
    assert form["line_items[0][price_data][currency]"] == "eur" and form["customer_email"] == "ana@example.com"
    assert form["success_url"].endswith(f"/c/{session.public_id}/return/?payment={Payment.objects.get().public_id}")
    assert int(form["expires_at"]) >= int((timezone.now() + timedelta(minutes=30)).timestamp())
    assert sent.headers["Authorization"] == "Bearer sk_test_tenant_key"
    assert sent.headers["Idempotency-Key"] == f"ievents-{Payment.objects.get().public_id}"

    responses.get("https://api.stripe.com/v1/checkout/sessions/cs_test_1", json={
        "id": "cs_test_1", "object": "checkout.session", "status": "complete", "payment_status": "paid",
        "client_reference_id": session.public_id, "metadata": {"checkout_session": session.public_id},
        "amount_total": 5000, "currency": "eur"})
    payment = Payment.objects.get()
    status = client.get(client.get(f"/c/{session.public_id}/return/?payment={payment.public_id}")["Location"])
    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    assert "You're going!" in status.content.decode()


@responses.activate
def test_stripe_return_while_unpaid_changes_nothing(client, stripe_event_):
    session = _ready(stripe_event_)
    responses.post("https://api.stripe.com/v1/checkout/sessions", json={"id": "cs_test_2", "url": "https://x.test/p"})
    _pay(client, session, "stripe")
    responses.get("https://api.stripe.com/v1/checkout/sessions/cs_test_2", json={
        "id": "cs_test_2", "status": "open", "payment_status": "unpaid", "client_reference_id": session.public_id})
    client.get(f"/c/{session.public_id}/return/?payment={Payment.objects.get().public_id}")
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING


@responses.activate
def test_stripe_being_down_at_start_shows_an_alert_and_the_attendee_can_retry(client, stripe_event_):
    session = _ready(stripe_event_)
    responses.post("https://api.stripe.com/v1/checkout/sessions", status=500, json={"error": {"message": "boom"}})
    response = _pay(client, session, "stripe")
    page = response.content.decode()
    assert response.status_code == 200 and 'role="alert"' in page and "could not be started" in page
    assert Payment.objects.get().status == Payment.Status.FAILED


# --- Easypay ---------------------------------------------------------------------------------
@pytest.fixture
def easypay_event(organization, event):
    configure(organization, "easypay", secret="ep-secret-123456789", credentials={"account_id": "acc", "api_key": "key"})
    return event


@responses.activate
def test_easypay_multibanco_shows_entity_reference_amount_and_deadline_and_holds_the_tickets(client, easypay_event):
    session = _ready(easypay_event)
    responses.post(f"{EASYPAY_API}/single", status=201, json={
        "status": "ok", "message": ["Your request was successfully created"], "id": EP_ID,
        "method": {"type": "mb", "status": "pending", "entity": 21098, "reference": "702358145"}})
    response = _pay(client, session, "easypay")
    assert response["Location"] == f"/c/{session.public_id}/status/"
    sent = json.loads(responses.calls[0].request.body)
    assert sent["method"] == "mb" and sent["value"] == 50.0 and sent["currency"] == "EUR" and sent["type"] == "sale"
    assert sent["key"] == Payment.objects.get().public_id and "expiration_time" in sent
    assert responses.calls[0].request.headers["AccountId"] == "acc"
    page = client.get(response["Location"]).content.decode()
    for text in ("21098", "702358145", "50.00", "Pay by"):
        assert text in page
    session.refresh_from_db()
    assert session.expires_at > timezone.now() + timedelta(hours=47)  # the hold lasts as long as the reference


@responses.activate
def test_easypay_mbway_asks_the_phone_waits_and_completes_when_the_api_says_paid(client, easypay_event):
    session = _ready(easypay_event)
    responses.post(f"{EASYPAY_API}/single", status=201, json={"status": "ok", "id": EP_ID,
                                                              "method": {"type": "mbw", "status": "pending"}})
    response = _pay(client, session, "easypay", phone="+351 912 345 678")
    sent = json.loads(responses.calls[0].request.body)
    assert sent["method"] == "mbw" and sent["customer"]["phone"] == "912345678"
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, payment_status="pending"))
    waiting = client.get(response["Location"]).content.decode()
    assert "MB WAY app" in waiting and 'aria-live="polite" data-poll="' in waiting  # asks again by itself
    responses.replace(responses.GET, f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID))
    done = client.get(response["Location"]).content.decode()
    assert "You're going!" in done
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


@responses.activate
def test_a_phone_that_is_not_a_portuguese_mobile_is_refused_before_any_call(client, easypay_event):
    session = _ready(easypay_event)
    response = _pay(client, session, "easypay", phone="12345")
    page = response.content.decode()
    assert 'role="alert"' in page and "9 digits" in page
    assert len(responses.calls) == 0


# --- Ifthenpay -------------------------------------------------------------------------------
@pytest.fixture
def ifthen_event(organization, event):
    configure(organization, "ifthenpay", secret="anti-phishing-123456", credentials={"mb_key": "MBK-1", "mbway_key": "MBW-1"})
    return event


@responses.activate
def test_ifthenpay_multibanco_reference_then_its_callback_completes_the_order(client, ifthen_event):
    session = _ready(ifthen_event)
    responses.post(f"{IFTHENPAY_API}/multibanco/reference/init", json={
        "Amount": "50.00", "Entity": "12345", "ExpiryDate": "25-11-2026", "Message": "Success",
        "OrderId": "x", "Reference": "999888777", "RequestId": "REQ-mb-1", "Status": "0"})
    response = _pay(client, session, "ifthenpay")
    sent = json.loads(responses.calls[0].request.body)
    assert sent["mbKey"] == "MBK-1" and sent["amount"] == "50.00" and len(sent["orderId"]) <= 15
    page = client.get(response["Location"]).content.decode()
    assert "12345" in page and "999888777" in page
    callback = client.get(f"/api/webhooks/ifthenpay/{session.organization.public_id}", {
        "key": "anti-phishing-123456", "orderId": sent["orderId"], "amount": "50.00", "requestId": "REQ-mb-1",
        "entity": "12345", "reference": "999888777", "payment_datetime": "24-11-2026 09:12:00"})
    assert callback.status_code == 200
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


@responses.activate
@pytest.mark.parametrize(("code", "expected"), [("000", Status.COMPLETED), ("020", Status.REJECTED),
                                                ("101", Status.REJECTED), ("123", Status.PAYMENT_PENDING)])
def test_ifthenpay_mbway_status_is_rechecked_by_request_id(client, ifthen_event, code, expected):
    session = _ready(ifthen_event)
    responses.post(f"{IFTHENPAY_API}/spg/payment/mbway", json={
        "Amount": "50.00", "Message": "Pending", "OrderId": "x", "RequestId": "REQ-mbw-1", "Status": "000"})
    response = _pay(client, session, "ifthenpay", phone="912345678")
    sent = json.loads(responses.calls[0].request.body)
    assert sent["mbWayKey"] == "MBW-1" and sent["mobileNumber"] == "351#912345678"
    responses.get(f"{IFTHENPAY_API}/spg/payment/mbway/status", json={"Status": code, "RequestId": "REQ-mbw-1"})
    client.get(response["Location"])
    status_call = responses.calls[-1].request
    assert "requestId=REQ-mbw-1" in status_call.url and "mbWayKey=MBW-1" in status_call.url
    session.refresh_from_db()
    assert session.status == expected


@responses.activate
def test_ifthenpay_refusing_the_mbway_request_shows_an_alert(client, ifthen_event):
    session = _ready(ifthen_event)
    responses.post(f"{IFTHENPAY_API}/spg/payment/mbway", json={"Message": "Invalid phone", "Status": "999"})
    page = _pay(client, session, "ifthenpay", phone="912345678").content.decode()
    assert 'role="alert"' in page
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING and Payment.objects.get().status == Payment.Status.FAILED


def test_the_review_page_offers_only_the_providers_the_organizer_enabled(client, organization, event):
    configure(organization, "stripe", secret="whsec_x", credentials={"secret_key": "sk"})
    configure(organization, "easypay", enabled=False)
    session = _ready(event)
    page = client.get(f"/c/{session.public_id}/review/").content.decode()
    assert "Card (Stripe)" in page and "Easypay" not in page
    assert 'name="phone"' not in page  # no provider enabled pays by MB WAY
    response = _pay(client, session, "easypay")
    assert response.status_code == 200 and not Payment.objects.exists()
    configure(organization, "easypay", enabled=True)
    assert 'name="phone"' in client.get(f"/c/{session.public_id}/review/").content.decode()


# --- Issue 21: Pay again reuses the open reference; starts are bounded per order -------------
@responses.activate
def test_clicking_pay_again_reuses_the_open_multibanco_reference(client, ifthen_event):
    session = _ready(ifthen_event)
    responses.post(f"{IFTHENPAY_API}/multibanco/reference/init", json={
        "Amount": "50.00", "Entity": "12345", "ExpiryDate": "25-11-2026", "Message": "Success",
        "OrderId": "x", "Reference": "999888777", "RequestId": "REQ-mb-1", "Status": "0"})
    for _ in range(15):
        response = _pay(client, session, "ifthenpay")
        assert response.status_code == 302
    assert len(responses.calls) == 1  # one reference at the provider, not fifteen
    assert Payment.objects.filter(session=session).count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "999888777" in page


@responses.activate
def test_payment_starts_are_rate_limited_per_order(client, settings, ifthen_event):
    settings.PAYMENT_STARTS_PER_ORDER = 3
    session = _ready(ifthen_event)
    responses.post(f"{IFTHENPAY_API}/spg/payment/mbway", json={
        "Amount": "50.00", "Message": "Pending", "OrderId": "x", "RequestId": "REQ-mbw", "Status": "000"})
    for _ in range(3):  # MB WAY: each Pay is a new request to the phone
        assert _pay(client, session, "ifthenpay", phone="912345678").status_code == 302
    response = _pay(client, session, "ifthenpay", phone="912345678")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page and "Too many attempts" in page
    assert len(responses.calls) == 3 and Payment.objects.filter(session=session).count() == 3
