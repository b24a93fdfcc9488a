"""The OpenAPI schema and docs, and ``schemathesis`` against every operation in it.

Schemathesis generates requests from ``/v1/schema`` (valid and invalid bodies, odd
headers, odd path ids) and calls the app in-process; no operation may answer with a
server error. Examples per operation are few so the suite stays fast; the point is
breadth over every operation, not depth.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.django_db


def test_the_schema_is_served_without_a_key_and_lists_the_webhook_routes(client):
    response = client.get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    for path in ["/v1/webhook_endpoints", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret",
                 "/v1/webhook_endpoints/{endpoint_id}/test", "/v1/webhook_events",
                 "/v1/webhook_events/{event_id}/deliveries", "/v1/deliveries/{delivery_id}/retry"]:
        assert path in schema["paths"], path
    create = schema["paths"]["/v1/webhook_endpoints"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    listing = schema["paths"]["/v1/webhook_events"]["get"]
    assert {"limit", "cursor", "type", "session"} <= {p["name"] for p in listing["parameters"]}


def test_the_docs_page_loads_its_assets_from_us_not_a_cdn(client):
    response = client.get("/v1/docs")
    html = response.content.decode()
    assert response.status_code == 200
    assert "swagger-ui" in html and "/static/drf_spectacular_sidecar/" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()


def load_schema():
    # Loaded when the module is collected (Django is set up by then); the schema view
    # touches no database. (schemathesis' lazy fixture loader does not run on pytest 9.)
    from ievents.wsgi import application

    return schemathesis.openapi.from_wsgi("/v1/schema?format=json", application)


schema = load_schema()


@pytest.fixture(autouse=True)
def keep_the_test_connection_open():
    """Calls through the WSGI app fire request_started/finished, whose handler closes a
    connection that is inside a transaction (the test's): on PostgreSQL every later
    query then fails. Django's own test client disconnects it the same way."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_operation_answers_with_a_server_error(case, api_key, event, organization):
    from webhooks.models import WebhookEndpoint

    # Lists have a row to show, and the organization has something to protect.
    WebhookEndpoint.objects.get_or_create(organization=organization, url="http://127.0.0.1:9/hook",
                                          defaults={"enabled_events": ["*"]})
    response = case.call(headers={"Authorization": f"Bearer {api_key}"})
    case.validate_response(response, checks=[not_a_server_error])
