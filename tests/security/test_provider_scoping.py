"""Provider news touches only that provider's payments (issue 13, finding 3).

An Ifthenpay callback naming a pending sandbox payment's id completed it; through the
platform's key (org ``_``) it completed a session of an organization that never enabled
Ifthenpay. Now a session is found only through a payment of the provider whose route and
secret verified the news.
"""

import pytest

from checkout.models import Status
from payments.models import Payment
from tests.conftest import make_event
from tests.payments.helpers import (
    IFTHENPAY_KEY,
    STRIPE_SECRET,
    checkout_object,
    configure,
    ifthenpay_callback,
    pending_session,
    post_stripe,
    stripe_event,
)
from webhooks.models import InboundWebhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox_payment(organization, event):
    session, payment = pending_session(event, provider="sandbox")
    Payment.objects.filter(pk=payment.pk).update(provider_reference=payment.public_id)
    payment.refresh_from_db()
    return session, payment


def test_an_ifthenpay_callback_naming_a_sandbox_payment_changes_nothing(client, organization, sandbox_payment):
    configure(organization, "ifthenpay", secret=IFTHENPAY_KEY)
    session, payment = sandbox_payment
    response = ifthenpay_callback(client, organization.public_id, request_id=payment.public_id, amount="50.00")
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    session.refresh_from_db()
    payment.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING and payment.status == Payment.Status.PENDING


def test_the_platform_key_cannot_complete_an_organization_that_never_enabled_ifthenpay(
        client, settings, sandbox_payment):
    settings.IFTHENPAY_ANTI_PHISHING_KEY = "env-anti-phishing-key-0123"
    session, payment = sandbox_payment
    response = ifthenpay_callback(client, "_", request_id=payment.public_id, amount="50.00",
                                  key="env-anti-phishing-key-0123")
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING and session.tickets.count() == 0
    assert InboundWebhook.objects.get().session is None


def test_the_platform_key_still_completes_its_own_ifthenpay_payment(client, settings, organization, event):
    settings.IFTHENPAY_ANTI_PHISHING_KEY = "env-anti-phishing-key-0123"
    session, _ = pending_session(event, provider="ifthenpay", reference="REQ-env-1")
    response = ifthenpay_callback(client, "_", request_id="REQ-env-1", amount="50.00",
                                  key="env-anti-phishing-key-0123")
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


def test_a_stripe_event_naming_a_session_paid_with_another_provider_changes_nothing(client, organization,
                                                                                     sandbox_payment):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    session, _ = sandbox_payment
    response = post_stripe(client, organization.public_id,
                           stripe_event("checkout.session.completed", checkout_object(session)))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING


def test_another_organizations_ifthenpay_payment_is_out_of_reach(client, organization, other_organization):
    configure(organization, "ifthenpay", secret=IFTHENPAY_KEY)
    rival, _ = pending_session(make_event(other_organization, providers=("ifthenpay",)), provider="ifthenpay",
                               reference="REQ-rival")
    response = ifthenpay_callback(client, organization.public_id, request_id="REQ-rival", amount="50.00")
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    rival.refresh_from_db()
    assert rival.status == Status.PAYMENT_PENDING
