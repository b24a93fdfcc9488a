"""Easypay's three notification kinds, as its docs show them: generic, authorisation and
transaction. Each is found among our payments by what it carries, confirmed with the API,
and one about anything that is not ours is acknowledged (2xx, logged) and changes nothing."""

import logging

import pytest
import responses

from checkout.models import Status
from webhooks.models import InboundWebhook

from ..payments.helpers import (
    EASYPAY_API,
    EASYPAY_SECRET,
    configure,
    easypay_notification,
    easypay_single,
    pending_session,
    post_easypay,
)

pytestmark = pytest.mark.django_db
EP_ID = "1bbc14c3-8ca8-492c-887d-1ca86400e4fa"
CAPTURE_ID = "f6d8c1e0-5a1b-4d7e-8c3a-0e2b9f4a7d21"
FOREIGN = "22ea3cc9-424b-489a-91b7-8955f643dc93"


@pytest.fixture
def easypay_org(organization, event):
    configure(organization, "easypay", secret=EASYPAY_SECRET, credentials={"account_id": "acc", "api_key": "key"})
    return organization


@pytest.fixture
def paying(easypay_org, event):
    return pending_session(event, provider="easypay", reference=EP_ID, method="mbway")


def transaction_notification(easypay_id: str, key: str, *, paid=50.0) -> dict:
    """A transaction notification as Easypay's docs show it."""
    return {
        "id": easypay_id, "value": 50.0, "currency": "EUR", "key": key, "expiration_time": "2026-12-06 10:20",
        "customer": {"id": FOREIGN, "name": "Ana Silva", "email": "ana@example.com", "phone": "911234567",
                     "phone_indicative": "+351"},
        "method": "mbw", "account": {"id": "2b0f63e2-9fb5-4e52-aca0-b4bf0339bbe6"},
        "transaction": {"id": CAPTURE_ID, "key": key, "type": "capture", "date": "2026-12-04 10:00:00",
                        "transfer_date": "2026-12-05", "document_number": "R-1", "method": "mbw",
                        "values": {"requested": 50.0, "paid": paid, "fixed_fee": 0.3, "variable_fee": 0.5,
                                   "tax": 0.18, "transfer": 49.02}},
    }


def authorisation_notification(easypay_id: str, key: str) -> dict:
    return {"id": easypay_id, "value": 50.0, "currency": "EUR", "key": key, "expiration_time": "2026-12-06 10:20",
            "customer": {"id": FOREIGN, "name": "Ana Silva", "email": "ana@example.com"},
            "method": "cc", "account": {"id": "2b0f63e2-9fb5-4e52-aca0-b4bf0339bbe6"}}


@responses.activate
def test_a_transaction_notification_completes_the_order_once_the_api_confirms(client, easypay_org, paying):
    session, payment = paying
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, value=50.0))
    response = post_easypay(client, easypay_org.public_id, transaction_notification(EP_ID, payment.public_id))
    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.amount_paid == 5000
    assert InboundWebhook.objects.get().type == "transaction"


@responses.activate
def test_the_amount_a_transaction_notification_claims_is_not_believed(client, easypay_org, paying):
    session, payment = paying
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, payment_status="pending"))
    response = post_easypay(client, easypay_org.public_id, transaction_notification(EP_ID, payment.public_id))
    assert response.json()["outcome"] == "ignored"
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING


@responses.activate
def test_an_authorisation_notification_is_confirmed_and_applied(client, easypay_org, paying):
    session, payment = paying
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, payment_status="authorised"))
    response = post_easypay(client, easypay_org.public_id, authorisation_notification(EP_ID, payment.public_id))
    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    session.refresh_from_db()
    assert session.status == Status.AUTHORIZED


@responses.activate
def test_a_notification_is_found_by_the_key_we_sent_when_its_id_is_not_the_payments(client, easypay_org, paying):
    """A generic notification of a capture carries the capture's id; our key finds the payment."""
    session, payment = paying
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID))
    note = {**easypay_notification(CAPTURE_ID), "key": payment.public_id}
    response = post_easypay(client, easypay_org.public_id, note)
    assert response.json()["outcome"] == "processed"
    assert responses.calls[0].request.url == f"{EASYPAY_API}/single/{EP_ID}"
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


@pytest.mark.parametrize("note", [
    easypay_notification(FOREIGN),
    {**easypay_notification(FOREIGN), "type": "refund", "key": "someone-elses-refund"},
    {**easypay_notification(FOREIGN), "type": "void", "status": "success"},
    transaction_notification(FOREIGN, "pay_not_ours"),
    authorisation_notification(FOREIGN, "pay_not_ours"),
], ids=["generic", "refund", "void", "transaction", "authorisation"])
def test_a_notification_about_something_not_ours_is_acknowledged_and_logged(client, easypay_org, paying, note,
                                                                             caplog):
    session, _ = paying
    with responses.RequestsMock(), caplog.at_level(logging.INFO, logger="payments.easypay"):  # no call to Easypay
        response = post_easypay(client, easypay_org.public_id, note)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert any(FOREIGN in r.getMessage() and "acknowledged" in r.getMessage() for r in caplog.records)
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING
    # Sent again (Easypay retries what it thinks failed): a duplicate, still 2xx.
    assert post_easypay(client, easypay_org.public_id, note).json()["outcome"] == "duplicate"


def test_a_payment_of_another_organization_is_not_ours(client, easypay_org, other_organization):
    from ..conftest import make_event

    rival, payment = pending_session(make_event(other_organization, providers=("easypay",)), provider="easypay",
                                     reference=FOREIGN)
    with responses.RequestsMock():
        response = post_easypay(client, easypay_org.public_id, transaction_notification(FOREIGN, payment.public_id))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    rival.refresh_from_db()
    assert rival.status == Status.PAYMENT_PENDING


@pytest.mark.parametrize("body", [
    {"value": 50.0, "method": "mb"},  # no id
    {"id": "../single/x", "type": "capture", "status": "success"},  # an id that is not one
    {"id": EP_ID, "key": "k"},  # neither generic, nor authorisation, nor transaction
    {"id": EP_ID, "type": "capture", "status": 7},
])
def test_what_is_not_an_easypay_notification_is_400(client, easypay_org, body):
    import json

    response = client.post(f"/api/webhooks/easypay/{easypay_org.public_id}?secret={EASYPAY_SECRET}",
                           data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
