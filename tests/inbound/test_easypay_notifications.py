"""Easypay generic notifications: unsigned, so accepted only with the tenant's secret in the
URL, and never acted on before Easypay's API confirms the payment."""

import json

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
EP_ID = "5eca7446-14e9-47bb-aabb-5ee237159b8b"
CREDENTIALS = {"account_id": "acc-tenant", "api_key": "key-tenant"}


@pytest.fixture
def easypay_org(organization, event):
    configure(organization, "easypay", secret=EASYPAY_SECRET, credentials=CREDENTIALS)
    return organization


@pytest.fixture
def paying(easypay_org, event):
    session, _ = pending_session(event, provider="easypay", reference=EP_ID, method="multibanco")
    return session


@responses.activate
def test_a_notification_is_confirmed_with_the_api_before_the_session_completes(client, easypay_org, paying):
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, value=50.0))
    response = post_easypay(client, easypay_org.public_id, easypay_notification(EP_ID))
    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    assert len(responses.calls) == 1
    sent = responses.calls[0].request.headers
    assert (sent["AccountId"], sent["ApiKey"]) == ("acc-tenant", "key-tenant")
    paying.refresh_from_db()
    assert paying.status == Status.COMPLETED and paying.amount_paid == 5000


@responses.activate
def test_the_notifications_claim_is_not_trusted_when_the_api_says_pending(client, easypay_org, paying):
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, payment_status="pending"))
    response = post_easypay(client, easypay_org.public_id, easypay_notification(EP_ID, status="success"))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


@responses.activate
def test_a_multibanco_reference_paid_with_another_amount_is_flagged_not_completed(client, easypay_org, paying, mailoutbox):
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, value=50.0, paid=30.0))
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = post_easypay(client, easypay_org.public_id, easypay_notification(EP_ID))
    assert response.status_code == 200
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING
    assert "paid 3000 EUR but the order is 5000 EUR" in paying.needs_attention
    assert mailoutbox and "needs your attention" in mailoutbox[0].subject


def test_without_the_secret_nothing_is_fetched_or_changed(client, easypay_org, paying):
    with responses.RequestsMock() as mock:  # any call to Easypay would fail this test
        for secret in (None, "wrong-secret"):
            response = post_easypay(client, easypay_org.public_id, easypay_notification(EP_ID), secret=secret)
            assert response.status_code == 400
        assert len(mock.calls) == 0
    assert set(InboundWebhook.objects.values_list("verified", "outcome")) == {(False, "rejected")}
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


def test_the_secret_is_not_stored_in_the_log(client, easypay_org, paying):
    post_easypay(client, easypay_org.public_id, easypay_notification(EP_ID), secret="wrong-secret")
    row = InboundWebhook.objects.get()
    assert EP_ID in row.payload and "wrong-secret" not in row.payload


@responses.activate
def test_a_payment_easypay_does_not_know_is_refused(client, easypay_org, paying):
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", status=404, json={"status": "error", "message": ["Not found"]})
    response = post_easypay(client, easypay_org.public_id, easypay_notification(EP_ID))
    assert response.status_code == 400
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


@responses.activate
def test_easypay_being_down_is_503_and_the_retry_goes_through(client, easypay_org, paying):
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", status=502, body="bad gateway")
    note = easypay_notification(EP_ID)
    assert post_easypay(client, easypay_org.public_id, note).status_code == 503
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING
    responses.replace(responses.GET, f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID))
    assert post_easypay(client, easypay_org.public_id, note).json()["outcome"] == "processed"


@responses.activate
def test_a_duplicate_notification_is_acknowledged_once_applied(client, easypay_org, paying):
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID))
    note = easypay_notification(EP_ID)
    assert post_easypay(client, easypay_org.public_id, note).json()["outcome"] == "processed"
    assert post_easypay(client, easypay_org.public_id, note).json()["outcome"] == "duplicate"
    paying.refresh_from_db()
    assert paying.tickets.count() == 2


@pytest.mark.parametrize("body", ["{}", "[]", "nope", json.dumps({"id": EP_ID, "type": "capture"})])
def test_malformed_notifications_are_400(client, easypay_org, paying, body):
    response = client.post(f"/api/webhooks/easypay/{easypay_org.public_id}?secret={EASYPAY_SECRET}", data=body,
                           content_type="application/json")
    assert response.status_code == 400
    assert InboundWebhook.objects.get().outcome == "rejected"


@responses.activate
def test_the_environment_org_uses_the_environment_secret_and_keys(client, settings, organization, event):
    settings.EASYPAY_WEBHOOK_SECRET = "env-secret-123456"
    settings.EASYPAY_ACCOUNT_ID, settings.EASYPAY_API_KEY = "acc-env", "key-env"
    session, _ = pending_session(event, provider="easypay", reference=EP_ID)
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID))
    assert post_easypay(client, "_", easypay_notification(EP_ID), secret=EASYPAY_SECRET).status_code == 400
    assert post_easypay(client, "_", easypay_notification(EP_ID), secret="env-secret-123456").status_code == 200
    assert responses.calls[0].request.headers["AccountId"] == "acc-env"
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


@responses.activate
def test_a_notification_about_another_tenants_payment_changes_nothing(client, easypay_org, other_organization):
    from tests.conftest import make_event

    rival, _ = pending_session(make_event(other_organization, providers=("easypay",)), provider="easypay", reference=EP_ID)
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID))
    response = post_easypay(client, easypay_org.public_id, easypay_notification(EP_ID))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    rival.refresh_from_db()
    assert rival.status == Status.PAYMENT_PENDING


def basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@responses.activate
def test_the_secret_as_the_urls_password_arrives_as_basic_auth_and_is_accepted(client, easypay_org, paying):
    """Issue 13, finding 2: ``https://easypay:<secret>@host/…`` (what the admin shows) keeps
    the secret out of the request line; the client sends it as HTTP Basic authentication."""
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, value=50.0))
    response = client.post(f"/api/webhooks/easypay/{easypay_org.public_id}", data=json.dumps(easypay_notification(EP_ID)),
                           content_type="application/json", HTTP_AUTHORIZATION=basic("easypay", EASYPAY_SECRET))
    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    paying.refresh_from_db()
    assert paying.status == Status.COMPLETED


@pytest.mark.parametrize("authorization", [
    basic("easypay", "wrong-" + EASYPAY_SECRET), basic(EASYPAY_SECRET, ""), basic("easypay", EASYPAY_SECRET[:-1]),
    "Basic !!!not-base64", "Bearer " + EASYPAY_SECRET, "Basic " + EASYPAY_SECRET,
])
def test_a_wrong_basic_password_is_refused_and_changes_nothing(client, easypay_org, paying, authorization):
    response = client.post(f"/api/webhooks/easypay/{easypay_org.public_id}", data=json.dumps(easypay_notification(EP_ID)),
                           content_type="application/json", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 400 and response.json()["outcome"] == "rejected"
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING
