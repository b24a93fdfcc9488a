"""Ifthenpay callbacks: a GET authenticated by the anti-phishing key; the amount must match."""

import pytest

from checkout.models import Status
from webhooks.models import InboundWebhook

from ..payments.helpers import IFTHENPAY_KEY, configure, ifthenpay_callback, pending_session

pytestmark = pytest.mark.django_db
REQUEST_ID = "REQ-7f3a9c"


@pytest.fixture
def ifthen_org(organization, event):
    configure(organization, "ifthenpay", secret=IFTHENPAY_KEY, credentials={"mb_key": "MB-1", "mbway_key": "MBW-1"})
    return organization


@pytest.fixture
def paying(ifthen_org, event):
    session, _ = pending_session(event, provider="ifthenpay", reference=REQUEST_ID, method="multibanco")
    return session


def test_a_callback_with_the_key_and_the_right_amount_completes_the_session(client, ifthen_org, paying):
    response = ifthenpay_callback(client, ifthen_org.public_id, request_id=REQUEST_ID, amount="50.00")
    assert response.status_code == 200
    paying.refresh_from_db()
    assert paying.status == Status.COMPLETED and paying.amount_paid == 5000
    row = InboundWebhook.objects.get()
    assert row.verified and row.type == "multibanco.paid" and row.event_id == REQUEST_ID
    assert IFTHENPAY_KEY not in row.payload and "key=%2A%2A%2A" in row.payload


@pytest.mark.parametrize("key", [None, "", "wrong", IFTHENPAY_KEY[:-1], IFTHENPAY_KEY + "x"])
def test_a_callback_without_the_right_key_is_refused(client, ifthen_org, paying, key):
    response = ifthenpay_callback(client, ifthen_org.public_id, request_id=REQUEST_ID, amount="50.00", key=key)
    assert response.status_code == 400  # not 200: Ifthenpay would retry a genuine one
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


def test_a_callback_with_another_amount_is_flagged_not_completed(client, ifthen_org, paying):
    response = ifthenpay_callback(client, ifthen_org.public_id, request_id=REQUEST_ID, amount="0.01")
    assert response.status_code == 200
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING and "paid 1 EUR" in paying.needs_attention


@pytest.mark.parametrize("amount", ["", "abc", "-5", "NaN"])
def test_an_unreadable_amount_is_malformed(client, ifthen_org, paying, amount):
    response = ifthenpay_callback(client, ifthen_org.public_id, request_id=REQUEST_ID, amount=amount)
    assert response.status_code == 400
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


def test_a_callback_without_request_id_is_malformed(client, ifthen_org, paying):
    assert ifthenpay_callback(client, ifthen_org.public_id, request_id="", amount="50.00").status_code == 400


def test_a_repeated_callback_is_acknowledged_and_ignored(client, ifthen_org, paying):
    for _ in range(3):
        assert ifthenpay_callback(client, ifthen_org.public_id, request_id=REQUEST_ID, amount="50.00").status_code == 200
    # Duplicates are counted on the first copy's row (one indexed UPDATE each), not rows of their own.
    assert list(InboundWebhook.objects.values_list("outcome", "duplicates")) == [("processed", 2)]
    assert paying.tickets.count() == 2


def test_a_callback_for_an_unknown_request_is_acknowledged_and_changes_nothing(client, ifthen_org, paying):
    response = ifthenpay_callback(client, ifthen_org.public_id, request_id="REQ-unknown", amount="50.00")
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"


def test_the_environment_key_works_for_org_underscore(client, settings, organization, event):
    settings.IFTHENPAY_ANTI_PHISHING_KEY = "env-anti-phishing-key"
    session, _ = pending_session(event, provider="ifthenpay", reference=REQUEST_ID)
    assert ifthenpay_callback(client, "_", request_id=REQUEST_ID, amount="50.00", key=IFTHENPAY_KEY).status_code == 400
    assert ifthenpay_callback(client, "_", request_id=REQUEST_ID, amount="50.00",
                              key="env-anti-phishing-key").status_code == 200
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


def test_a_callback_for_another_tenants_request_changes_nothing(client, ifthen_org, other_organization):
    from tests.conftest import make_event

    rival, _ = pending_session(make_event(other_organization, providers=("ifthenpay",)), provider="ifthenpay",
                               reference=REQUEST_ID)
    response = ifthenpay_callback(client, ifthen_org.public_id, request_id=REQUEST_ID, amount="50.00")
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    rival.refresh_from_db()
    assert rival.status == Status.PAYMENT_PENDING
