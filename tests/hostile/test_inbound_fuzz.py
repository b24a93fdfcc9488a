"""Every inbound route, fed random and adversarial requests.

Routes: ``POST|GET /api/webhooks/{provider}/{org}`` for stripe, easypay, ifthenpay and
sandbox, with org = a tenant's public id, ``_`` (the environment) or an unknown id; and
``POST /v1/webhooks/payments/{provider}?org=`` behind ``x-checkout-secret``.

Invariants: never a 5xx; without a valid signature never a 2xx and never a change to any
session, payment, hold, outbox event or delivery (``state_fingerprint``); a validly signed
body of any shape is answered 200 or 400, never a 5xx.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import stripe
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from tests.payments.helpers import checkout_object, stripe_event

from .conftest import FUZZ, state_fingerprint

pytestmark = pytest.mark.django_db

PROVIDERS = ["stripe", "easypay", "ifthenpay", "sandbox"]
PLATFORM_SECRET = "platform-forwarder-" + "f" * 24

# --- Strategies ---------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
adversarial_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "\x00", "a\x00b", "💳" * 50, "<script>alert(1)</script>", "' OR 1=1 --", "%00", "../../x",
                     "9" * 400, "-1", "1e400", "NaN", "Infinity", "0x10", " ", "\u202e\u0000\ufeff"]),
)


def json_bomb(depth: int) -> bytes:
    return b'{"id":' * 0 + b"[" * depth + b"]" * depth


bodies = st.one_of(
    st.binary(max_size=400),
    adversarial_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1000, max_value=100_000).map(json_bomb),
    st.just(b'{"a":' * 5000 + b"1" + b"}" * 5000),
    st.just(b"\xff\xfe\x00\x00garbage"),
    st.just(json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {}}}).encode()),
)

# Header values a WSGI server could hand us (latin-1), including malformed signatures.
header_values = st.one_of(
    adversarial_text.map(lambda s: s.encode("utf-8", "ignore").decode("latin-1")),
    st.sampled_from([
        "t=1,v1=abc", "t=,v1=", "v1=" + "a" * 64, f"t={int(time.time())},v1={'0' * 64},v1={'1' * 64}",
        f"t={int(time.time())},t={int(time.time())},v1=zz", "t=notanumber,v1=00", "t=99999999999999999999,v1=00",
        "v1,AAAA", "v1,", "v2,abc v1,def", "msg_123", str(int(time.time())), str(int(time.time()) + 10**6), "-5",
        "1" * 300, "application/json; charset=utf-16", "text/plain", "multipart/form-data; boundary=x",
    ]),
)
header_names = st.sampled_from(["HTTP_STRIPE_SIGNATURE", "HTTP_WEBHOOK_ID", "HTTP_WEBHOOK_TIMESTAMP",
                                "HTTP_WEBHOOK_SIGNATURE", "HTTP_X_EASYPAY_SECRET", "HTTP_X_CHECKOUT_SECRET",
                                "HTTP_SVIX_ID", "HTTP_X_FORWARDED_FOR", "HTTP_CONTENT_ENCODING"])
headers = st.dictionaries(header_names, header_values, max_size=5)
queries = st.dictionaries(
    st.sampled_from(["key", "secret", "requestId", "amount", "orderId", "reference", "entity", "payment_datetime",
                     "org", "id", "type"]),
    adversarial_text, max_size=6,
)
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=zz", "application/octet-stream", ""])


def _org_choice(choice: str, mine, theirs) -> str:
    return {"mine": mine.org.public_id, "theirs": theirs.org.public_id, "env": "_",
            "unknown": "org_doesnotexist", "weird": "org_%00%3Cscript%3E"}[choice]


def _post(client, path, body, content_type, extra):
    return client.generic("POST", path, data=body, content_type=content_type, **extra)


def _assert_refused_and_unchanged(response, before):
    assert response.status_code < 500, response.content[:300]
    assert response.status_code in (400, 401, 404, 405, 413), (response.status_code, response.content[:300])
    assert state_fingerprint() == before


# --- Unsigned: random everything ------------------------------------------------------------------
@FUZZ
@given(provider=st.sampled_from(PROVIDERS + ["paypal", "STRIPE", "sandbox%00"]),
       org=st.sampled_from(["mine", "theirs", "env", "unknown", "weird"]),
       method=st.sampled_from(["GET", "POST"]), body=bodies, extra=headers, query=queries, content_type=content_types)
def test_unsigned_requests_of_any_shape_are_refused_and_change_nothing(client, mine, theirs, provider, org, method,
                                                                       body, extra, query, content_type):
    before = state_fingerprint()
    path = f"/api/webhooks/{provider}/{_org_choice(org, mine, theirs)}"
    if method == "GET":
        response = client.get(path, query, **extra)
    else:
        from urllib.parse import urlencode

        response = _post(client, path + ("?" + urlencode(query) if query else ""), body, content_type, extra)
    _assert_refused_and_unchanged(response, before)


@FUZZ
@given(provider=st.sampled_from(PROVIDERS), secret=st.one_of(st.none(), header_values),
       org=st.one_of(st.none(), st.sampled_from(["mine", "theirs", "env", "unknown"])), body=bodies, extra=headers)
def test_the_forwarding_route_needs_its_own_secret_and_a_valid_provider_signature(client, mine, theirs, provider,
                                                                                   secret, org, body, extra):
    before = state_fingerprint()
    query = f"?org={_org_choice(org, mine, theirs)}" if org else ""
    if secret is not None:
        extra = {**extra, "HTTP_X_CHECKOUT_SECRET": secret}
    with override_settings(CHECKOUT_API_SECRET=PLATFORM_SECRET):
        response = _post(client, f"/v1/webhooks/payments/{provider}{query}", body, "application/json", extra)
    _assert_refused_and_unchanged(response, before)
    if secret != PLATFORM_SECRET:
        assert response.status_code == 401


def test_the_forwarding_route_with_the_right_secret_still_verifies_the_provider(client, mine):
    before = state_fingerprint()
    session = mine.stripe_session
    body = json.dumps(stripe_event("checkout.session.completed", checkout_object(session)))
    with override_settings(CHECKOUT_API_SECRET=PLATFORM_SECRET):
        forged = _post(client, f"/v1/webhooks/payments/stripe?org={mine.org.public_id}", body, "application/json",
                       {"HTTP_X_CHECKOUT_SECRET": PLATFORM_SECRET, "HTTP_STRIPE_SIGNATURE": "t=1,v1=00"})
        assert forged.status_code == 400 and state_fingerprint() == before
        header = stripe.WebhookSignature.generate_signature_header(body, mine.secrets["stripe"])
        signed = _post(client, f"/v1/webhooks/payments/stripe?org={mine.org.public_id}", body, "application/json",
                       {"HTTP_X_CHECKOUT_SECRET": PLATFORM_SECRET, "HTTP_STRIPE_SIGNATURE": header})
    assert signed.status_code == 200, signed.content
    session.refresh_from_db()
    assert session.status in ("paid", "completed")


def test_the_forwarding_route_is_off_without_a_platform_secret(client, mine):
    with override_settings(CHECKOUT_API_SECRET=""):
        response = _post(client, f"/v1/webhooks/payments/stripe?org={mine.org.public_id}", b"{}", "application/json",
                         {"HTTP_X_CHECKOUT_SECRET": ""})
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_not_allowed_and_change_nothing(client, mine, method):
    before = state_fingerprint()
    for provider in PROVIDERS:
        response = client.generic(method, f"/api/webhooks/{provider}/{mine.org.public_id}", b"{}",
                                  content_type="application/json")
        assert response.status_code == 405
    assert state_fingerprint() == before


def test_a_body_over_the_cap_is_413_whatever_it_declares(client, mine, settings):
    settings.INBOUND_WEBHOOK_MAX_BYTES = 1024
    before = state_fingerprint()
    for provider in PROVIDERS:
        path = f"/api/webhooks/{provider}/{mine.org.public_id}"
        assert _post(client, path, b"x" * 1025, "application/json", {}).status_code == 413
        # A lying Content-Length (smaller than the body) does not get more than the cap read.
        assert _post(client, path, b"x" * 5000, "application/json", {"CONTENT_LENGTH": "10"}).status_code == 400
        assert _post(client, path, b"x" * 10, "application/json", {"CONTENT_LENGTH": "-1"}).status_code == 400
        assert _post(client, path, b"x" * 10, "application/json", {"CONTENT_LENGTH": "abc"}).status_code == 400
    assert state_fingerprint() == before


# --- Stripe: a real event for a real session, then broken one way at a time ----------------------
def _stripe_completed(session) -> str:
    return json.dumps(stripe_event("checkout.session.completed", checkout_object(session)))


def _sig(body: str, secret: str, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)


@FUZZ
@given(tamper=st.sampled_from(["flip_byte", "append", "stale", "future", "other_secret", "duplicate_bad_first",
                               "no_v1", "uppercase", "empty", "scheme_v0", "truncated", "whitespace_body",
                               "other_tenant_route"]),
       position=st.integers(min_value=0, max_value=10_000))
def test_a_stripe_event_broken_in_any_one_way_changes_nothing(client, mine, theirs, tamper, position):
    session = mine.stripe_session
    before = state_fingerprint()
    body = _stripe_completed(session)
    secret = mine.secrets["stripe"]
    path = f"/api/webhooks/stripe/{mine.org.public_id}"
    header = _sig(body, secret)
    now = int(time.time())
    if tamper == "flip_byte":
        i = position % len(body)
        body = body[:i] + chr((ord(body[i]) + 1) % 127 or 65) + body[i + 1:]
    elif tamper == "append":
        body = body + " "
    elif tamper == "stale":
        header = _sig(body, secret, now - 301 - position % 10_000)
    elif tamper == "future":
        header = _sig(body, secret, now + 301 + position % 10_000)
    elif tamper == "other_secret":
        header = _sig(body, theirs.secrets["stripe"])
    elif tamper == "duplicate_bad_first":
        header = f"t={now},v1={'0' * 64}"
    elif tamper == "no_v1":
        header = header.split(",")[0]
    elif tamper == "uppercase":
        header = header.upper()
    elif tamper == "empty":
        header = ""
    elif tamper == "scheme_v0":
        header = header.replace("v1=", "v0=")
    elif tamper == "truncated":
        header = header[: position % len(header)]
    elif tamper == "whitespace_body":
        body = "\n" + body
    elif tamper == "other_tenant_route":
        path = f"/api/webhooks/stripe/{theirs.org.public_id}"
    response = _post(client, path, body.encode(), "application/json", {"HTTP_STRIPE_SIGNATURE": header})
    _assert_refused_and_unchanged(response, before)


def test_a_stripe_signature_with_a_bad_and_a_good_v1_is_accepted_as_stripe_does_during_rotation(client, mine):
    """Stripe sends one v1 per active secret; a valid one among them is enough (the library's rule)."""
    session = mine.stripe_session
    body = _stripe_completed(session)
    good = _sig(body, mine.secrets["stripe"])
    header = good + ",v1=" + "0" * 64
    response = _post(client, f"/api/webhooks/stripe/{mine.org.public_id}", body.encode(), "application/json",
                     {"HTTP_STRIPE_SIGNATURE": header})
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status in ("paid", "completed")


def test_a_validly_signed_event_from_another_tenant_about_my_session_changes_nothing(client, mine, theirs):
    """Org B's secret is valid on org B's route; the session it names is org A's."""
    before = state_fingerprint()
    body = _stripe_completed(mine.stripe_session)
    response = _post(client, f"/api/webhooks/stripe/{theirs.org.public_id}", body.encode(), "application/json",
                     {"HTTP_STRIPE_SIGNATURE": _sig(body, theirs.secrets["stripe"])})
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert state_fingerprint() == before


def test_a_validly_signed_ifthenpay_callback_for_another_tenants_request_id_changes_nothing(client, mine, theirs):
    before = state_fingerprint()
    response = client.get(f"/api/webhooks/ifthenpay/{theirs.org.public_id}",
                          {"key": theirs.secrets["ifthenpay"], "requestId": "REQ-A", "amount": "50.00"})
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert state_fingerprint() == before


# --- Validly signed, hostile content ----------------------------------------------------------------
@FUZZ
@given(value=json_values, kind=st.sampled_from(["raw", "completed", "intent", "refund"]))
def test_validly_signed_stripe_bodies_of_any_shape_are_200_or_400(client, mine, value, kind):
    before = state_fingerprint()
    payload = {"raw": value,
               "completed": {"id": "evt_r", "type": "checkout.session.completed", "data": {"object": value}},
               "intent": {"id": "evt_i", "type": "payment_intent.succeeded", "data": {"object": value}},
               "refund": {"id": "evt_c", "type": "charge.refunded", "data": {"object": value}}}[kind]
    body = json.dumps(payload)
    response = _post(client, f"/api/webhooks/stripe/{mine.org.public_id}", body.encode(), "application/json",
                     {"HTTP_STRIPE_SIGNATURE": _sig(body, mine.secrets["stripe"])})
    assert response.status_code in (200, 400), response.content[:300]
    # Nothing in the generated values names one of our sessions, so nothing may change.
    assert state_fingerprint() == before


def _sandbox_headers(secret: str, body: str, msg_id: str | None = None, timestamp=None) -> dict:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), tz=UTC)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    signature = Webhook(secret).sign(msg_id, when, body)
    return {"HTTP_WEBHOOK_ID": msg_id, "HTTP_WEBHOOK_TIMESTAMP": str(int(when.timestamp())),
            "HTTP_WEBHOOK_SIGNATURE": signature}


@pytest.mark.parametrize("depth", [2_000, 50_000, 120_000])
@pytest.mark.parametrize("provider", ["stripe", "sandbox", "easypay"])
def test_a_validly_signed_json_bomb_is_malformed_not_a_crash(client, mine, provider, depth):
    """Nesting deep enough to exhaust the parser's recursion must answer 400 like any bad body."""
    before = state_fingerprint()
    body = "[" * depth + "]" * depth
    path = f"/api/webhooks/{provider}/{mine.org.public_id}"
    if provider == "stripe":
        extra = {"HTTP_STRIPE_SIGNATURE": _sig(body, mine.secrets["stripe"])}
    elif provider == "sandbox":
        extra = _sandbox_headers(mine.secrets["sandbox"], body)
    else:
        path += f"?secret={mine.secrets['easypay']}"
        extra = {}
    response = _post(client, path, body.encode(), "application/json", extra)
    assert response.status_code == 400, response.content[:300]
    assert state_fingerprint() == before


@FUZZ
@given(tamper=st.sampled_from(["stale", "future", "other_secret", "flip", "no_id", "no_timestamp", "bad_timestamp",
                               "v2_only", "many_bad", "id_changed"]))
def test_a_sandbox_event_broken_in_any_one_way_changes_nothing(client, mine, theirs, tamper):
    session, payment = mine.pending["sandbox"]
    before = state_fingerprint()
    body = json.dumps({"id": "evt_sb_1", "type": "succeeded",
                       "data": {"session": session.public_id, "payment": payment.public_id,
                                "amount": session.amount_total, "currency": "EUR"}})
    secret = mine.secrets["sandbox"]
    extra = _sandbox_headers(secret, body)
    if tamper == "stale":
        extra = _sandbox_headers(secret, body, timestamp=time.time() - 3600)
    elif tamper == "future":
        extra = _sandbox_headers(secret, body, timestamp=time.time() + 3600)
    elif tamper == "other_secret":
        extra = _sandbox_headers(theirs.secrets["sandbox"], body)
    elif tamper == "flip":
        body = body.replace("succeeded", "succeedee")
    elif tamper == "no_id":
        del extra["HTTP_WEBHOOK_ID"]
    elif tamper == "no_timestamp":
        del extra["HTTP_WEBHOOK_TIMESTAMP"]
    elif tamper == "bad_timestamp":
        extra["HTTP_WEBHOOK_TIMESTAMP"] = "soon"
    elif tamper == "v2_only":
        extra["HTTP_WEBHOOK_SIGNATURE"] = extra["HTTP_WEBHOOK_SIGNATURE"].replace("v1,", "v2,")
    elif tamper == "many_bad":
        extra["HTTP_WEBHOOK_SIGNATURE"] = " ".join(["v1,AAAA"] * 200)
    elif tamper == "id_changed":
        extra["HTTP_WEBHOOK_ID"] = "msg_other"
    response = _post(client, f"/api/webhooks/sandbox/{mine.org.public_id}", body.encode(), "application/json", extra)
    _assert_refused_and_unchanged(response, before)


def test_the_same_sandbox_event_correctly_signed_does_change_the_session(client, mine):
    """The control for the test above: the unbroken request is accepted."""
    session, payment = mine.pending["sandbox"]
    body = json.dumps({"id": "evt_sb_1", "type": "succeeded",
                       "data": {"session": session.public_id, "payment": payment.public_id,
                                "amount": session.amount_total, "currency": "EUR"}})
    response = _post(client, f"/api/webhooks/sandbox/{mine.org.public_id}", body.encode(), "application/json",
                     _sandbox_headers(mine.secrets["sandbox"], body))
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert session.status in ("paid", "completed")


@FUZZ
@given(secret=st.one_of(adversarial_text, st.sampled_from(["easypay-B-" + "e" * 20, "easypay-A-" + "e" * 19])),
       where=st.sampled_from(["query", "header"]), body=bodies)
def test_easypay_needs_its_exact_secret(client, mine, secret, where, body):
    before = state_fingerprint()
    path = f"/api/webhooks/easypay/{mine.org.public_id}"
    extra = {}
    if where == "query":
        from urllib.parse import quote

        path += "?secret=" + quote(secret.encode("utf-8", "surrogatepass"))
    else:
        extra = {"HTTP_X_EASYPAY_SECRET": secret.encode("utf-8", "ignore").decode("latin-1")}
    _assert_refused_and_unchanged(_post(client, path, body, "application/json", extra), before)


@FUZZ
@given(query=st.dictionaries(st.sampled_from(["orderId", "amount", "requestId", "entity", "reference",
                                              "payment_datetime"]), adversarial_text, max_size=6),
       request_id=st.sampled_from(["REQ-A", "REQ-B", "", "REQ-A\x00", "REQ-" + "A" * 300]))
def test_validly_keyed_ifthenpay_callbacks_with_hostile_values_never_crash(client, mine, query, request_id):
    before = state_fingerprint()
    params = {**query, "key": mine.secrets["ifthenpay"], "requestId": request_id}
    response = client.get(f"/api/webhooks/ifthenpay/{mine.org.public_id}", params)
    assert response.status_code in (200, 400), response.content[:300]
    after = state_fingerprint()
    if after != before:
        # Only our own pending Ifthenpay request may move, and only on a readable amount.
        session, _ = mine.pending["ifthenpay"]
        session.refresh_from_db()
        assert request_id == "REQ-A" and response.status_code == 200
        assert session.status in ("paid", "completed")
