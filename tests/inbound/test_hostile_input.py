"""Whatever arrives at the inbound routes: never a 500, never a change without proof."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout.models import Status
from webhooks.models import InboundWebhook

from ..payments.helpers import (
    EASYPAY_SECRET,
    IFTHENPAY_KEY,
    STRIPE_SECRET,
    checkout_object,
    configure,
    pending_session,
    post_stripe,
    stripe_event,
    stripe_headers,
)

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture
def tenant(organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    configure(organization, "easypay", secret=EASYPAY_SECRET, credentials={"account_id": "a", "api_key": "k"})
    configure(organization, "ifthenpay", secret=IFTHENPAY_KEY)
    session, _ = pending_session(event, provider="stripe", reference="REQ-1")
    return organization, session


def _unchanged(session):
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING and not session.needs_attention


@FUZZ
@given(body=st.binary(max_size=300), signature=st.text(max_size=80))
def test_random_bytes_with_random_signatures_are_refused_by_every_provider(client, tenant, body, signature):
    org, session = tenant
    for provider in ("stripe", "easypay", "ifthenpay", "sandbox"):
        response = client.post(f"/api/webhooks/{provider}/{org.public_id}", data=body, content_type="application/json",
                               HTTP_STRIPE_SIGNATURE=signature.encode("utf-8", "ignore").decode("latin-1"))
        assert response.status_code == 400, (provider, response.content)
    _unchanged(session)


@FUZZ
@given(value=json_values)
def test_validly_signed_stripe_bodies_of_any_shape_never_fail_the_server(client, tenant, value):
    org, session = tenant
    for payload in (value, {"id": "evt_x", "type": "checkout.session.completed", "data": {"object": value}},
                    {"id": "evt_y", "type": "charge.refunded", "data": {"object": value}}):
        body = json.dumps(payload)
        response = client.post(f"/api/webhooks/stripe/{org.public_id}", data=body, content_type="application/json",
                               **stripe_headers(body, STRIPE_SECRET))
        assert response.status_code in (200, 400), response.content
    _unchanged(session)


@FUZZ
@given(query=st.dictionaries(st.sampled_from(["orderId", "amount", "requestId", "entity", "reference",
                                              "payment_datetime", "key"]), st.text(max_size=40), max_size=7))
def test_ifthenpay_callbacks_with_any_query_need_the_key(client, tenant, query):
    org, session = tenant
    response = client.get(f"/api/webhooks/ifthenpay/{org.public_id}", query)
    assert response.status_code in (200, 400)
    if query.get("key") != IFTHENPAY_KEY:
        assert response.status_code == 400
    _unchanged(session)


def test_nul_bytes_and_huge_values_are_refused_cleanly(client, tenant):
    org, session = tenant
    # NUL bytes in a body and a query that the log must store (PostgreSQL text refuses NUL).
    assert client.post(f"/api/webhooks/stripe/{org.public_id}", data=b"\x00evt\x00",
                       content_type="application/json").status_code == 400
    for key in ("wrong\x00key", IFTHENPAY_KEY):
        response = client.get(f"/api/webhooks/ifthenpay/{org.public_id}",
                              {"key": key, "requestId": "REQ\x00-1", "amount": "50.00"})
        assert response.status_code == 400
    assert InboundWebhook.objects.filter(payload__contains="requestId=REQ%00-1").count() == 2
    assert "\x00" not in "".join(InboundWebhook.objects.values_list("payload", flat=True))
    body = json.dumps(stripe_event("checkout.session.completed", {**checkout_object(session),
                                                                  "client_reference_id": "cs_\x00"}))
    response = client.post(f"/api/webhooks/stripe/{org.public_id}", data=body, content_type="application/json",
                           **stripe_headers(body, STRIPE_SECRET))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    # An amount larger than any column can hold is malformed, not a database error.
    response = client.get(f"/api/webhooks/ifthenpay/{org.public_id}",
                          {"key": IFTHENPAY_KEY, "requestId": "REQ-1", "amount": "1e400"})
    assert response.status_code == 400
    big = checkout_object(session, amount=10**30)
    assert post_stripe(client, org.public_id, stripe_event("checkout.session.completed", big)).status_code == 400
    _unchanged(session)


def test_an_easypay_id_that_is_not_an_id_never_reaches_the_api_url(client, tenant):
    org, session = tenant
    note = {"id": "../../capture/x", "key": "k", "type": "capture", "status": "success", "messages": [], "date": ""}
    response = client.post(f"/api/webhooks/easypay/{org.public_id}?secret={EASYPAY_SECRET}", data=json.dumps(note),
                           content_type="application/json")
    assert response.status_code == 400
    _unchanged(session)
