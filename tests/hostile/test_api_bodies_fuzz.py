"""Hostile JSON bodies for every API operation that takes one, on the key's own objects.

Schemathesis generates from the schema; these generate what the schema does not expect:
NUL bytes in values and in keys (PostgreSQL text and jsonb refuse NUL), huge and negative
numbers, deep nesting, wrong types, and bodies that are not JSON at all. Invariants: never
a 5xx; a 4xx changes nothing.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from .conftest import FUZZ, state_fingerprint

pytestmark = pytest.mark.django_db

nasty_strings = st.one_of(st.text(max_size=40), st.sampled_from(
    ["\x00", "a\x00", "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"), "💳" * 100, "x" * 3000,
     "<script>", "javascript:alert(1)", "http://169.254.169.254/latest", "http://127.0.0.1:9/\x00", "file:///etc/passwd",
     "https://[::1]/", "https://0x7f000001/", "ftp://example.com", "https://example.com/" + "a" * 2100]))
nasty_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**40, max_value=10**40),
                          st.floats(allow_nan=True, allow_infinity=True), nasty_strings)
nasty_values = st.recursive(nasty_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(nasty_strings, c,
                                                                                                 max_size=3),
                            max_leaves=12)


def _operations(mine):
    session = mine.stripe_session
    return {
        "create_session": ("post", "/v1/checkout/sessions", {"event": mine.event.public_id, "line_items": [
            {"ticket_type": mine.ticket_type.public_id, "quantity": 1}]}),
        "create_event": ("post", "/v1/events", {"name": "E", "currency": "EUR", "starts_at": "2030-01-01T10:00:00Z",
                                               "ticket_types": [{"name": "T", "price": 100, "quantity": 5}]}),
        "patch_event": ("patch", f"/v1/events/{mine.event.public_id}", {"name": "Renamed"}),
        "put_gate": ("put", f"/v1/events/{mine.event.public_id}/gate", {"url": "https://example.com/gate"}),
        "create_endpoint": ("post", "/v1/webhook_endpoints", {"url": "https://example.com/hook",
                                                             "enabled_events": ["*"]}),
        "patch_endpoint": ("patch", f"/v1/webhook_endpoints/{mine.endpoint.public_id}", {"description": "d"}),
        "expire_session": ("post", f"/v1/checkout/sessions/{session.public_id}/expire", {}),
    }


@pytest.fixture
def api(mine):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {mine.api_key}")
    return client


@FUZZ
@given(operation=st.sampled_from(["create_session", "create_event", "patch_event", "put_gate", "create_endpoint",
                                  "patch_endpoint"]),
       field=st.one_of(nasty_strings, st.sampled_from(["name", "url", "metadata", "line_items", "quantity",
                                                       "ticket_types", "enabled_events", "timeout_ms", "currency",
                                                       "starts_at", "customer_email", "webhook_url", "description",
                                                       "success_url", "price", "on_error"])),
       value=nasty_values)
def test_a_hostile_value_in_any_field_is_a_4xx_that_changes_nothing_or_a_valid_change(api, mine, operation, field,
                                                                                       value):
    method, path, base = _operations(mine)[operation]
    body = {**base, field: value}
    if field == "metadata" or operation == "create_session":
        body["metadata"] = value if isinstance(value, dict) else {str(field): value}
    before = state_fingerprint()
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert state_fingerprint() == before


@pytest.mark.parametrize("operation", ["create_session", "create_event", "patch_event", "put_gate", "create_endpoint",
                                       "patch_endpoint", "expire_session"])
@pytest.mark.parametrize("raw", [b"", b"{", b"null", b"[]", b'"x"', b"\x00", b"\xff\xfe", b"[" * 5000 + b"]" * 5000,
                                 b'{"a":' * 3000 + b"1" + b"}" * 3000, b'{"metadata": {"\\u0000": "x"}}'])
def test_bodies_that_are_not_what_any_operation_expects_are_4xx(api, mine, operation, raw):
    method, path, _ = _operations(mine)[operation]
    before = state_fingerprint()
    response = api.generic(method.upper(), path, raw, content_type="application/json")
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert state_fingerprint() == before
    assert response["Content-Type"].startswith("application/json")


def test_a_nul_in_a_metadata_key_is_refused_not_stored(api, mine):
    before = state_fingerprint()
    response = api.post("/v1/checkout/sessions", {"event": mine.event.public_id, "metadata": {"a\x00b": "x"},
                                                  "line_items": [{"ticket_type": mine.ticket_type.public_id,
                                                                  "quantity": 1}]}, format="json")
    assert response.status_code == 400, response.content
    assert state_fingerprint() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x",
                                          "application/x-www-form-urlencoded"])
def test_a_body_in_another_content_type_is_4xx(api, mine, content_type):
    before = state_fingerprint()
    response = api.generic("POST", "/v1/webhook_endpoints", json.dumps({"url": "https://example.com/h",
                                                                         "enabled_events": ["*"]}),
                           content_type=content_type)
    assert 400 <= response.status_code < 500
    assert state_fingerprint() == before


def test_a_body_over_the_upload_limit_is_400_even_with_an_idempotency_key(api, mine, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = state_fingerprint()
    body = json.dumps({"url": "https://example.com/h", "enabled_events": ["*"], "description": "x" * 20_000})
    for headers in ({}, {"HTTP_IDEMPOTENCY_KEY": "big-body-1"}):
        response = api.generic("POST", "/v1/webhook_endpoints", body, content_type="application/json", **headers)
        assert response.status_code == 400, response.content[:200]
    assert state_fingerprint() == before


@pytest.mark.parametrize("url", ["https://example.com:99999/hook", "https://example.com:0x50/hook",
                                 "https://example.com:-1/hook"])
@pytest.mark.parametrize("allow_private", [False, True])
def test_a_url_with_an_impossible_port_is_refused_everywhere_a_url_is_saved(api, mine, url, allow_private):
    """``urlsplit(url).port`` raises ValueError for ":99999"; with private targets off (production)
    that escaped the save-time SSRF check as a 500."""
    from django.test import override_settings

    before = state_fingerprint()
    with override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=allow_private):
        responses = [
            api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]}, format="json"),
            api.patch(f"/v1/webhook_endpoints/{mine.endpoint.public_id}", {"url": url}, format="json"),
            api.put(f"/v1/events/{mine.event.public_id}/gate", {"url": url}, format="json"),
            api.post("/v1/checkout/sessions", {"event": mine.event.public_id, "webhook_url": url, "line_items": [
                {"ticket_type": mine.ticket_type.public_id, "quantity": 1}]}, format="json"),
        ]
    for response in responses:
        assert response.status_code == 400, response.content[:200]
    assert state_fingerprint() == before
