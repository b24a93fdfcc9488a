"""The two inbound routes, their caps and their answers, whatever the provider."""

import json

import pytest
from standardwebhooks.webhooks import Webhook

from checkout.models import Status
from webhooks.models import InboundWebhook

from ..payments.helpers import STRIPE_SECRET, checkout_object, configure, pending_session, post_stripe, stripe_event

pytestmark = pytest.mark.django_db
API_SECRET = "checkout-api-secret-0123456789"


@pytest.fixture
def stripe_org(organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    return organization


def test_the_api_route_is_off_while_its_secret_is_unset(client, settings, stripe_org, event):
    settings.CHECKOUT_API_SECRET = ""
    session, _ = pending_session(event, provider="stripe")
    response = post_stripe(client, stripe_org.public_id, stripe_event("checkout.session.completed", checkout_object(session)),
                           path=f"/v1/webhooks/payments/stripe?org={stripe_org.public_id}", HTTP_X_CHECKOUT_SECRET="")
    assert response.status_code == 404
    assert not InboundWebhook.objects.exists()


@pytest.mark.parametrize("given", [None, "", "wrong", API_SECRET[:-1]])
def test_the_api_route_refuses_a_wrong_shared_secret(client, settings, stripe_org, event, given):
    settings.CHECKOUT_API_SECRET = API_SECRET
    session, _ = pending_session(event, provider="stripe")
    extra = {} if given is None else {"HTTP_X_CHECKOUT_SECRET": given}
    response = post_stripe(client, stripe_org.public_id, stripe_event("checkout.session.completed", checkout_object(session)),
                           path=f"/v1/webhooks/payments/stripe?org={stripe_org.public_id}", **extra)
    assert response.status_code == 401
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING


def test_the_api_route_with_its_secret_still_verifies_the_provider_signature(client, settings, stripe_org, event):
    settings.CHECKOUT_API_SECRET = API_SECRET
    session, _ = pending_session(event, provider="stripe")
    body = stripe_event("checkout.session.completed", checkout_object(session))
    path = f"/v1/webhooks/payments/stripe?org={stripe_org.public_id}"
    bad = post_stripe(client, "", body, secret="whsec_wrong", path=path, HTTP_X_CHECKOUT_SECRET=API_SECRET)
    assert bad.status_code == 400
    good = post_stripe(client, "", body, path=path, HTTP_X_CHECKOUT_SECRET=API_SECRET)
    assert good.status_code == 200 and good.json()["outcome"] == "processed"
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


def test_the_api_route_needs_an_org(client, settings, stripe_org):
    settings.CHECKOUT_API_SECRET = API_SECRET
    response = client.post("/v1/webhooks/payments/stripe", data="{}", content_type="application/json",
                           HTTP_X_CHECKOUT_SECRET=API_SECRET)
    assert response.status_code == 400


def test_the_api_route_does_not_want_an_api_key(client, settings, stripe_org, event):
    settings.CHECKOUT_API_SECRET = API_SECRET
    session, _ = pending_session(event, provider="stripe")
    response = post_stripe(client, "", stripe_event("checkout.session.completed", checkout_object(session)),
                           path=f"/v1/webhooks/payments/stripe?org={stripe_org.public_id}",
                           HTTP_X_CHECKOUT_SECRET=API_SECRET, HTTP_AUTHORIZATION="Bearer nonsense")
    assert response.status_code == 200


def test_other_methods_are_not_allowed(client, stripe_org):
    assert client.put(f"/api/webhooks/stripe/{stripe_org.public_id}", data="{}").status_code == 405
    assert client.delete(f"/api/webhooks/stripe/{stripe_org.public_id}").status_code == 405


def test_a_body_over_the_cap_is_413(client, settings, stripe_org):
    settings.INBOUND_WEBHOOK_MAX_BYTES = 100
    response = client.post(f"/api/webhooks/stripe/{stripe_org.public_id}", data="x" * 101,
                           content_type="application/json")
    assert response.status_code == 413
    assert not InboundWebhook.objects.exists()


def test_a_body_without_a_declared_length_is_still_read_only_up_to_the_cap(settings, stripe_org):
    """A chunked body declares no length: we read at most the cap + 1 bytes, then refuse."""
    from django.test import RequestFactory

    from webhooks import inbound

    settings.INBOUND_WEBHOOK_MAX_BYTES = 100
    request = RequestFactory().post("/", data=b"x" * 5000, content_type="application/json")
    del request.META["CONTENT_LENGTH"]
    with pytest.raises(inbound.BodyTooLarge):
        inbound.inbound_request(request)
    assert len(request.read()) == 5000 - 101  # the rest was never read by us


def test_a_body_exactly_at_the_cap_is_read(settings, stripe_org):
    from django.test import RequestFactory

    from webhooks import inbound

    settings.INBOUND_WEBHOOK_MAX_BYTES = 100
    request = RequestFactory().post("/", data=b"x" * 100, content_type="application/json")
    assert len(inbound.inbound_request(request).body) == 100


def test_sandbox_webhooks_are_standard_webhooks_signed_with_the_tenant_secret(client, organization, event):
    secret = "whsec_" + "c2FuZGJveHNlY3JldHNhbmRib3hzZWNyZXQ="
    configure(organization, "sandbox", secret=secret)
    session, payment = pending_session(event, provider="sandbox", reference="pay_x")
    body = json.dumps({"id": "evt_sb1", "type": "succeeded", "data": {"session": session.public_id,
                       "amount": session.amount_total, "currency": "EUR"}})
    from datetime import UTC, datetime

    now = datetime.now(tz=UTC)
    signature = Webhook(secret).sign("evt_sb1", now, body)
    headers = {"HTTP_WEBHOOK_ID": "evt_sb1", "HTTP_WEBHOOK_TIMESTAMP": str(int(now.timestamp())),
               "HTTP_WEBHOOK_SIGNATURE": signature}
    response = client.post(f"/api/webhooks/sandbox/{organization.public_id}", data=body,
                           content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    tampered = body.replace("evt_sb1", "evt_sb2")
    response = client.post(f"/api/webhooks/sandbox/{organization.public_id}", data=tampered,
                           content_type="application/json", **headers)
    assert response.status_code == 400
