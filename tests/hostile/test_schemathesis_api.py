"""Schemathesis over every operation in ``/v1/schema``, with ids that exist.

``tests/api/test_schema.py`` already sends generated requests to every operation; its path
ids are random, so most of them stop at a 404. Here each operation's path ids are replaced
by real objects:

* the API key's own (event, session, endpoint, outbound event, delivery): the operation's
  code runs for real, must not answer 5xx, and a 2xx must match the schema;
* another organization's: every operation must answer 404 and change nothing of theirs,
  whatever the generated body, query and headers.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = pytest.mark.django_db


def load_schema():
    from ievents.wsgi import application

    return schemathesis.openapi.from_wsgi("/v1/schema?format=json", application)


schema = load_schema()
EXAMPLES = hypothesis_settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(autouse=True)
def keep_the_test_connection_open():
    """See tests/api/test_schema.py: the WSGI app's request signals would close the test's connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def real_ids(path: str, tenant) -> dict[str, str]:
    """The path parameters of ``path`` filled with ``tenant``'s objects."""
    if path.startswith("/v1/webhook_events"):
        event_id = tenant.outbox_event.public_id
    else:
        event_id = tenant.event.public_id
    return {"event_id": event_id, "session_id": tenant.stripe_session.public_id,
            "endpoint_id": tenant.endpoint.public_id, "delivery_id": tenant.delivery.public_id,
            "code_id": tenant.promo_code.public_id}


def _fill(case, tenant, key):
    # Always the key's organization: a generated case may carry no or another Authorization.
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
    if case.path_parameters:
        ids = real_ids(case.path, tenant)
        case.path_parameters = {name: ids[name] for name in case.path_parameters}


@schema.parametrize()
@EXAMPLES
def test_every_operation_on_its_own_objects_answers_without_a_server_error_and_as_documented(case, mine):
    _fill(case, mine, mine.api_key)
    response = case.call()
    checks = [not_a_server_error]
    if 200 <= response.status_code < 300:
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)


def _theirs_fingerprint(theirs) -> dict:
    """Everything of org B an API call could change."""
    from checkout.models import CheckoutSession, PromoCode
    from ievents.models import Event, TicketType
    from payments.models import Payment
    from webhooks.models import Delivery, GateSettings, OutboxEvent, WebhookEndpoint

    org = theirs.org
    return {
        "sessions": list(CheckoutSession.objects.filter(organization=org).order_by("pk").values_list("pk", "status",
                                                                                                    "version")),
        "payments": list(Payment.objects.filter(session__organization=org).order_by("pk").values_list("pk", "status")),
        "events": list(Event.objects.filter(organization=org).order_by("pk").values_list("pk", "name", "published")),
        "ticket_types": list(TicketType.objects.filter(event__organization=org).order_by("pk")
                             .values_list("pk", "reserved", "quantity")),
        "gates": list(GateSettings.objects.filter(event__organization=org).order_by("pk")
                      .values_list("pk", "url", "enabled", "secret")),
        "endpoints": list(WebhookEndpoint.objects.filter(organization=org).order_by("pk")
                          .values_list("pk", "url", "enabled", "secret")),
        "promo_codes": list(PromoCode.objects.filter(event__organization=org).order_by("pk")
                            .values_list("pk", "code", "percent_off", "amount_off", "max_uses", "used")),
        "outbox": list(OutboxEvent.objects.filter(organization=org).order_by("pk").values_list("pk", flat=True)),
        "deliveries": list(Delivery.objects.filter(event__organization=org).order_by("pk")
                           .values_list("pk", "status", "attempts_count", "next_attempt_at")),
    }


@schema.parametrize()
@EXAMPLES
def test_every_operation_on_another_organizations_objects_is_a_404_or_shows_none_of_them(case, mine, theirs):
    their_ids = set(real_ids(case.path, theirs).values()) | {theirs.outbox_event.public_id}
    _fill(case, theirs, mine.api_key)
    # No Idempotency-Key: its middleware answers some repeats before the view runs; here the
    # view itself must refuse the other organization's id.
    case.headers = {k: v for k, v in case.headers.items() if k.lower() != "idempotency-key"}
    before = _theirs_fingerprint(theirs)
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    # OPTIONS describes the view (DRF's metadata), not the object: no id is looked up.
    if case.path_parameters and case.method.upper() != "OPTIONS":
        assert response.status_code in (404, 405), (case.method, case.formatted_path, response.status_code,
                                                    response.text[:300])
    body = response.text
    assert not any(public_id in body for public_id in their_ids), (case.method, case.path, body[:300])
    assert _theirs_fingerprint(theirs) == before
