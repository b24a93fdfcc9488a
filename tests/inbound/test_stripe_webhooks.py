"""Stripe webhooks at /api/webhooks/stripe/{org}: verified with the stripe library, once."""

import json
import time

import pytest
import responses

from checkout.models import Status
from webhooks.models import InboundWebhook, OutboxEvent

from ..payments.helpers import (
    STRIPE_ENV_SECRET,
    STRIPE_SECRET,
    charge_object,
    checkout_object,
    configure,
    intent_object,
    pending_session,
    post_stripe,
    stripe_event,
    stripe_headers,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_org(organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET, credentials={"secret_key": "sk_test_tenant"})
    return organization


@pytest.fixture
def paying(stripe_org, event):
    session, _ = pending_session(event, provider="stripe", reference="cs_test_x")
    return session


def _types(session):
    return list(OutboxEvent.objects.filter(session=session).order_by("id").values_list("type", flat=True))


def test_a_signed_checkout_completed_event_completes_the_session(client, stripe_org, paying):
    response = post_stripe(client, stripe_org.public_id, stripe_event("checkout.session.completed", checkout_object(paying)))
    assert response.status_code == 200
    assert response.json()["outcome"] == "processed"
    paying.refresh_from_db()
    assert paying.status == Status.COMPLETED and paying.tickets.count() == 2 and paying.amount_paid == 5000
    row = InboundWebhook.objects.get()
    assert (row.provider, row.organization, row.verified, row.outcome, row.session) == (
        "stripe", stripe_org, True, "processed", paying)
    assert row.type == "checkout.session.completed" and row.event_id.startswith("evt_")
    assert _types(paying)[-2:] == ["checkout.session.paid", "checkout.session.completed"]


def test_a_wrong_secret_is_refused_recorded_and_changes_nothing(client, stripe_org, paying):
    response = post_stripe(client, stripe_org.public_id, stripe_event("checkout.session.completed", checkout_object(paying)),
                           secret="whsec_someone_else_entirely")
    assert response.status_code == 400
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING
    row = InboundWebhook.objects.get()
    assert not row.verified and row.outcome == "rejected" and row.session is None and row.dedupe_key is None


def test_a_stale_timestamp_is_refused_even_with_the_right_secret(client, stripe_org, paying):
    event = stripe_event("checkout.session.completed", checkout_object(paying))
    response = post_stripe(client, stripe_org.public_id, event, timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert "tolerance" in InboundWebhook.objects.get().error
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


def test_a_timestamp_inside_the_tolerance_is_accepted(client, stripe_org, paying):
    event = stripe_event("checkout.session.completed", checkout_object(paying))
    assert post_stripe(client, stripe_org.public_id, event, timestamp=int(time.time()) - 250).status_code == 200


def test_a_tampered_body_is_refused(client, stripe_org, paying):
    event = stripe_event("checkout.session.completed", checkout_object(paying, amount=1))
    payload = json.dumps(event)
    headers = stripe_headers(payload, STRIPE_SECRET)
    tampered = payload.replace('"amount_total": 1', f'"amount_total": {paying.amount_total}')
    assert tampered != payload
    response = client.post(f"/api/webhooks/stripe/{stripe_org.public_id}", data=tampered,
                           content_type="application/json", **headers)
    assert response.status_code == 400
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING and not paying.needs_attention


def test_a_missing_signature_header_is_refused(client, stripe_org, paying):
    payload = json.dumps(stripe_event("checkout.session.completed", checkout_object(paying)))
    response = client.post(f"/api/webhooks/stripe/{stripe_org.public_id}", data=payload, content_type="application/json")
    assert response.status_code == 400
    assert InboundWebhook.objects.get().outcome == "rejected"


def test_a_garbled_signature_header_is_refused(client, stripe_org, paying):
    payload = json.dumps(stripe_event("checkout.session.completed", checkout_object(paying)))
    response = client.post(f"/api/webhooks/stripe/{stripe_org.public_id}", data=payload,
                           content_type="application/json", HTTP_STRIPE_SIGNATURE="t=abc,v1")
    assert response.status_code == 400


def test_a_signed_body_that_is_not_a_stripe_event_is_malformed(client, stripe_org, paying):
    for body in ("not json", "[1, 2]", json.dumps({"id": "evt_1", "type": "checkout.session.completed"})):
        response = client.post(f"/api/webhooks/stripe/{stripe_org.public_id}", data=body,
                               content_type="application/json", **stripe_headers(body, STRIPE_SECRET))
        assert response.status_code == 400, body
    rows = InboundWebhook.objects.all()
    assert {(r.verified, r.outcome) for r in rows} == {(True, "rejected")}
    assert all("malformed" in r.error for r in rows)
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


def test_a_duplicate_is_acknowledged_and_ignored(client, stripe_org, paying):
    event = stripe_event("checkout.session.completed", checkout_object(paying))
    first = post_stripe(client, stripe_org.public_id, event)
    second = post_stripe(client, stripe_org.public_id, event)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["outcome"] == "duplicate"
    assert _types(paying).count("checkout.session.paid") == 1
    assert paying.tickets.count() == 2
    # The duplicate is counted on the first copy's row (one indexed UPDATE), not a row of its own.
    assert list(InboundWebhook.objects.values_list("outcome", "duplicates")) == [("processed", 1)]


def test_an_event_we_do_not_subscribe_to_is_acknowledged_and_changes_nothing(client, stripe_org, paying):
    response = post_stripe(client, stripe_org.public_id, stripe_event("customer.created", {"id": "cus_1"}))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


def test_unknown_organization_is_404_and_nothing_is_recorded(client, stripe_org, paying):
    response = post_stripe(client, "org_doesnotexist", stripe_event("checkout.session.completed", checkout_object(paying)))
    assert response.status_code == 404
    assert not InboundWebhook.objects.exists()


def test_unknown_provider_is_404(client, stripe_org):
    response = client.post(f"/api/webhooks/paypal/{stripe_org.public_id}", data="{}", content_type="application/json")
    assert response.status_code == 404


def test_the_environment_org_uses_the_environment_secret(client, settings, organization, event):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_ENV_SECRET
    session, _ = pending_session(event, provider="stripe")
    event_body = stripe_event("checkout.session.completed", checkout_object(session))
    assert post_stripe(client, "_", event_body, secret=STRIPE_SECRET).status_code == 400
    response = post_stripe(client, "_", event_body, secret=STRIPE_ENV_SECRET)
    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    assert InboundWebhook.objects.filter(verified=True).get().organization is None


def test_an_organization_without_its_own_secret_falls_back_to_the_environment(client, settings, organization, event):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_ENV_SECRET
    configure(organization, "stripe", secret="")
    session, _ = pending_session(event, provider="stripe")
    response = post_stripe(client, organization.public_id, stripe_event("checkout.session.completed",
                           checkout_object(session)), secret=STRIPE_ENV_SECRET)
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


def test_the_environment_secret_cannot_reach_a_tenant_with_its_own_secret(client, settings, stripe_org, paying):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_ENV_SECRET
    response = post_stripe(client, "_", stripe_event("checkout.session.completed", checkout_object(paying)),
                           secret=STRIPE_ENV_SECRET)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


def test_no_secret_anywhere_refuses_everything(client, organization, event):
    session, _ = pending_session(event, provider="stripe")
    response = post_stripe(client, "_", stripe_event("checkout.session.completed", checkout_object(session)), secret="")
    assert response.status_code == 400
    assert "no stripe webhook secret" in InboundWebhook.objects.get().error


def test_an_event_naming_another_tenants_session_changes_nothing(client, stripe_org, other_organization):
    from tests.conftest import make_event

    rival_event = make_event(other_organization, providers=("stripe",))
    rival_session, _ = pending_session(rival_event, provider="stripe")
    # Signed correctly with Acme's secret, sent to Acme's URL, but about Rival's session.
    response = post_stripe(client, stripe_org.public_id, stripe_event("checkout.session.completed",
                           checkout_object(rival_session)))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    rival_session.refresh_from_db()
    assert rival_session.status == Status.PAYMENT_PENDING
    assert "no session of this organization" in InboundWebhook.objects.get().error


def test_an_oversized_body_is_413_and_changes_nothing(client, settings, stripe_org, paying):
    settings.INBOUND_WEBHOOK_MAX_BYTES = 1024
    event = stripe_event("checkout.session.completed", {**checkout_object(paying), "padding": "x" * 2000})
    response = post_stripe(client, stripe_org.public_id, event)
    assert response.status_code == 413
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING


# --- The 11 events, mapped ------------------------------------------------------------------
@pytest.mark.parametrize(("event_type", "obj", "expected"), [
    ("checkout.session.completed", lambda s: checkout_object(s, payment_status="unpaid"), Status.PROCESSING),
    ("checkout.session.async_payment_succeeded", lambda s: checkout_object(s), Status.COMPLETED),
    ("checkout.session.async_payment_failed", lambda s: checkout_object(s, payment_status="unpaid"), Status.REJECTED),
    ("checkout.session.expired", lambda s: checkout_object(s, payment_status="unpaid", status="expired"), Status.EXPIRED),
    ("payment_intent.succeeded", lambda s: intent_object(s, amount_received=s.amount_total), Status.COMPLETED),
    ("payment_intent.payment_failed", lambda s: intent_object(s), Status.REJECTED),
    ("payment_intent.canceled", lambda s: intent_object(s), Status.CANCELED),
    ("payment_intent.processing", lambda s: intent_object(s), Status.PROCESSING),
    ("payment_intent.amount_capturable_updated", lambda s: intent_object(s, amount_capturable=s.amount_total),
     Status.AUTHORIZED),
])
def test_each_payment_event_moves_the_session_as_the_table_says(client, stripe_org, paying, event_type, obj, expected):
    response = post_stripe(client, stripe_org.public_id, stripe_event(event_type, obj(paying)))
    assert response.status_code == 200, response.content
    paying.refresh_from_db()
    assert paying.status == expected


def _completed(client, org, session):
    post_stripe(client, org.public_id, stripe_event("checkout.session.completed", checkout_object(session)))
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


def test_a_full_refund_marks_the_session_refunded_and_announces_it(client, stripe_org, paying):
    _completed(client, stripe_org, paying)
    response = post_stripe(client, stripe_org.public_id,
                           stripe_event("charge.refunded", charge_object(paying, refunded=paying.amount_total)))
    assert response.status_code == 200
    paying.refresh_from_db()
    assert paying.status == Status.REFUNDED and paying.amount_refunded == paying.amount_total
    assert _types(paying)[-1] == "checkout.session.refunded"
    assert paying.tickets.count() == 2  # refunds take back nothing already issued


def test_a_partial_refund_then_the_rest(client, stripe_org, paying):
    _completed(client, stripe_org, paying)
    post_stripe(client, stripe_org.public_id, stripe_event("charge.refunded", charge_object(paying, refunded=1000)))
    paying.refresh_from_db()
    assert paying.status == Status.PARTIALLY_REFUNDED and paying.amount_refunded == 1000
    post_stripe(client, stripe_org.public_id, stripe_event("charge.refunded", charge_object(paying, refunded=5000)))
    paying.refresh_from_db()
    assert paying.status == Status.REFUNDED and paying.amount_refunded == 5000
    assert _types(paying).count("checkout.session.refunded") == 2


@responses.activate
def test_refund_created_asks_stripe_for_the_charge_and_is_not_counted_twice(client, stripe_org, paying):
    _completed(client, stripe_org, paying)
    charge = charge_object(paying, refunded=1000)
    responses.get(f"https://api.stripe.com/v1/charges/{charge['id']}", json=charge)
    post_stripe(client, stripe_org.public_id, stripe_event("charge.refunded", charge))
    refund = {"id": "re_1", "object": "refund", "amount": 1000, "charge": charge["id"], "metadata": {}}
    response = post_stripe(client, stripe_org.public_id, stripe_event("refund.created", refund))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert responses.calls[0].request.headers["Authorization"] == "Bearer sk_test_tenant"
    paying.refresh_from_db()
    assert paying.status == Status.PARTIALLY_REFUNDED and paying.amount_refunded == 1000
    assert _types(paying).count("checkout.session.refunded") == 1


@responses.activate
def test_refund_created_while_stripe_is_down_is_503_so_stripe_retries(client, stripe_org, paying):
    _completed(client, stripe_org, paying)
    responses.get("https://api.stripe.com/v1/charges/ch_1", status=503, json={"error": {"message": "down"}})
    refund = {"id": "re_1", "object": "refund", "amount": 1000, "charge": "ch_1", "metadata": {}}
    event = stripe_event("refund.created", refund)
    response = post_stripe(client, stripe_org.public_id, event)
    assert response.status_code == 503
    row = InboundWebhook.objects.filter(outcome="failed").get()
    assert row.verified and row.dedupe_key is None and row.error
    paying.refresh_from_db()
    assert paying.status == Status.COMPLETED
    responses.replace(responses.GET, "https://api.stripe.com/v1/charges/ch_1",
                      json={**charge_object(paying, refunded=1000), "id": "ch_1"})
    retry = post_stripe(client, stripe_org.public_id, event)  # the same event again: not a duplicate
    assert retry.status_code == 200 and retry.json()["outcome"] == "processed"
    paying.refresh_from_db()
    assert paying.status == Status.PARTIALLY_REFUNDED


@responses.activate
def test_a_charge_without_our_metadata_is_traced_through_its_payment_intent(client, stripe_org, paying):
    _completed(client, stripe_org, paying)
    charge = {**charge_object(paying, refunded=paying.amount_total), "metadata": {}}
    responses.get(f"https://api.stripe.com/v1/payment_intents/{charge['payment_intent']}",
                  json=intent_object(paying, status="succeeded"))
    response = post_stripe(client, stripe_org.public_id, stripe_event("charge.refunded", charge))
    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    paying.refresh_from_db()
    assert paying.status == Status.REFUNDED


def test_a_refund_before_any_payment_is_ignored(client, stripe_org, paying):
    response = post_stripe(client, stripe_org.public_id,
                           stripe_event("charge.refunded", charge_object(paying, refunded=paying.amount_total)))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    paying.refresh_from_db()
    assert paying.status == Status.PAYMENT_PENDING
