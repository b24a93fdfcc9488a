"""A NUL byte in a URL names nothing: 404 in the path, 400 in the query string, never a 500.

PostgreSQL text cannot hold NUL, so without ``ievents.nul_bytes.RefuseNulBytesMiddleware``
every lookup by an id from the URL was a ``DataError`` (500) on PostgreSQL. These tests are
decisive on PostgreSQL (CI); on SQLite they pass either way.
"""

import pytest

from .conftest import state_fingerprint

pytestmark = pytest.mark.django_db


def test_a_nul_in_any_path_id_is_a_404(client, mine):
    before = state_fingerprint()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {mine.api_key}"}
    for path in ["/e/ev_%00/", "/c/cs_%00/", "/c/cs_%00/review/", "/c/cs_%00/return/", "/c/cs_%00/status/",
                 "/sandbox/pay/pay_%00/", "/api/webhooks/stripe/org_%00", "/api/webhooks/st%00ripe/_",
                 "/v1/events/ev_%00", "/v1/events/ev_%00/gate", "/v1/checkout/sessions/cs_%00",
                 "/v1/webhook_endpoints/we_%00", "/v1/webhook_events/evt_%00", "/v1/webhook_events/evt_%00/deliveries"]:
        assert client.get(path, **auth).status_code == 404, path
    for path in ["/c/cs_%00/cancel/", "/v1/checkout/sessions/cs_%00/expire", "/v1/deliveries/del_%00/retry",
                 "/v1/webhook_endpoints/we_%00/rotate_secret", "/v1/events/ev_%00/gate/test"]:
        assert client.post(path, **auth).status_code == 404, path
    assert state_fingerprint() == before


def test_a_nul_in_a_query_string_is_a_400_outside_the_provider_routes(client, mine):
    session, _ = mine.pending["sandbox"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {mine.api_key}"}
    for path in [f"/c/{session.public_id}/return/?payment=pay_%00", f"/c/{session.public_id}/status/?x=%00",
                 "/v1/webhook_events?session=cs_%00", "/v1/webhook_events?type=%00", "/v1/events?cursor=%00",
                 "/v1/checkout/sessions?limit=1%00"]:
        assert client.get(path, **auth).status_code == 400, path


def test_the_provider_routes_still_record_a_nul_before_refusing_it(client, mine):
    from webhooks.models import InboundWebhook

    response = client.get(f"/api/webhooks/ifthenpay/{mine.org.public_id}", {"key": "wrong", "requestId": "R\x00"})
    assert response.status_code == 400
    row = InboundWebhook.objects.filter(organization=mine.org, verified=False).latest("id")
    assert "\x00" not in row.payload and "requestId=R%00" in row.payload
