"""``/v1/webhook_endpoints``, ``/v1/webhook_events``, ``/v1/deliveries``: the contract, its
refusals, and tenant isolation."""

import pytest
from django.db import connection
from django.test import override_settings
from standardwebhooks.webhooks import Webhook

from tests.servers import LocalServer, Reply
from webhooks.models import Delivery, OutboxEvent, WebhookEndpoint

pytestmark = pytest.mark.django_db


def create(api, **body):
    body = {"url": "https://hooks.example.com/ievents", "enabled_events": ["*"]} | body
    return api.post("/v1/webhook_endpoints", body, format="json")


def error(response):
    return response.json()["error"]


# --- Endpoints ------------------------------------------------------------------------------------
def test_creating_an_endpoint_returns_its_secret_once(api, organization):
    response = create(api, description="Orders", enabled_events=["checkout.session.paid"])
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("we_") and body["object"] == "webhook_endpoint"
    assert body["secret"].startswith("whsec_")
    assert body["enabled_events"] == ["checkout.session.paid"] and body["enabled"] is True
    assert body["description"] == "Orders"

    shown = api.get(f"/v1/webhook_endpoints/{body['id']}").json()
    assert "secret" not in shown and body["secret"] not in str(shown)
    assert shown["secret_hint"].startswith("whsec_") and "…" in shown["secret_hint"]
    listed = api.get("/v1/webhook_endpoints").json()
    assert body["secret"] not in str(listed)


def test_the_endpoint_secret_is_encrypted_at_rest(api):
    body = create(api).json()
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhookendpoint")
        (stored,) = cursor.fetchone()
    assert stored.startswith("enc1:") and body["secret"] not in stored


def test_a_star_subscription_wins_over_a_list_and_duplicates_collapse(api):
    assert create(api, enabled_events=["checkout.session.paid", "*"]).json()["enabled_events"] == ["*"]
    paid = ["checkout.session.paid", "checkout.session.paid", "checkout.session.completed"]
    assert create(api, enabled_events=paid).json()["enabled_events"] == [
        "checkout.session.completed", "checkout.session.paid"]


@pytest.mark.parametrize("events", [[], ["payment_intent.succeeded"], "checkout.session.paid", [None]])
def test_unknown_or_missing_event_types_are_refused(api, events):
    response = create(api, enabled_events=events)
    assert response.status_code == 400
    assert error(response)["code"] == "invalid_request" and "enabled_events" in error(response)["fields"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "https://user:pw@example.com/hook",
                                 "https://example.com/" + "a" * 2000])
def test_bad_urls_are_refused_with_a_field_error(api, url):
    response = create(api, url=url)
    assert response.status_code == 400 and "url" in error(response)["fields"]
    assert not WebhookEndpoint.objects.exists()


@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False, DEBUG=False)
@pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://169.254.169.254/latest",
                                 "https://[::1]/hook", "https://localhost/hook", "http://hooks.example.com/plain"])
def test_a_private_address_or_plain_http_endpoint_is_refused_in_production(api, url):
    response = create(api, url=url)
    assert response.status_code == 400, response.json()
    assert "url" in error(response)["fields"]
    assert not WebhookEndpoint.objects.exists()


@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False, DEBUG=False)
def test_an_endpoint_cannot_be_moved_to_a_private_address_in_production(api, organization):
    endpoint = WebhookEndpoint.objects.create(organization=organization, url="https://hooks.example.com/x",
                                              enabled_events=["*"])
    response = api.patch(f"/v1/webhook_endpoints/{endpoint.public_id}", {"url": "https://192.168.1.1/"}, format="json")
    assert response.status_code == 400
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.com/x"


def test_updating_an_endpoint_changes_only_what_is_sent(api):
    created = create(api, description="before").json()
    response = api.patch(f"/v1/webhook_endpoints/{created['id']}",
                         {"enabled_events": ["checkout.session.expired"]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["enabled_events"] == ["checkout.session.expired"] and body["description"] == "before"
    assert body["url"] == created["url"]


def test_disabling_and_enabling_an_endpoint_through_the_api(api):
    created = create(api).json()
    off = api.patch(f"/v1/webhook_endpoints/{created['id']}", {"enabled": False}, format="json").json()
    assert off["enabled"] is False and off["disabled_reason"]
    on = api.patch(f"/v1/webhook_endpoints/{created['id']}", {"enabled": True}, format="json").json()
    assert on["enabled"] is True and on["disabled_reason"] == "" and on["failing_since"] is None


def test_deleting_an_endpoint(api):
    created = create(api).json()
    assert api.delete(f"/v1/webhook_endpoints/{created['id']}").status_code == 204
    assert api.get(f"/v1/webhook_endpoints/{created['id']}").status_code == 404
    assert not WebhookEndpoint.objects.exists()


def test_rotating_the_secret_returns_a_new_one_and_keeps_the_old_one_signing_for_a_while(api):
    created = create(api).json()
    response = api.post(f"/v1/webhook_endpoints/{created['id']}/rotate_secret")
    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == body["secret"] and endpoint.previous_secret == created["secret"]
    assert body["previous_secret_expires_at"]


def test_the_test_action_sends_one_signed_event_and_reports_the_outcome(api):
    with LocalServer(Reply(200, "thanks")) as server:
        created = create(api, url=server.url).json()
        response = api.post(f"/v1/webhook_endpoints/{created['id']}/test")
    body = response.json()
    assert response.status_code == 200 and body["succeeded"] is True and body["status_code"] == 200
    assert body["delivery"]["attempts"][0]["response_body"] == "thanks"
    request = server.requests[0]
    assert Webhook(created["secret"]).verify(request.body, request.headers)["type"] == "webhook_endpoint.test"


def test_the_test_action_reports_a_failing_receiver(api):
    with LocalServer(Reply(500, "nope")) as server:
        created = create(api, url=server.url).json()
        body = api.post(f"/v1/webhook_endpoints/{created['id']}/test").json()
    assert body["succeeded"] is False and body["status_code"] == 500 and body["error"] == "HTTP 500"
    assert len(server.requests) == 1


# --- Events and deliveries ----------------------------------------------------------------------
@pytest.fixture
def two_sessions(organization, open_session, event, ticket_type):
    from checkout import services

    WebhookEndpoint.objects.create(organization=organization, url="http://127.0.0.1:9/hook", enabled_events=["*"])
    first = services.create_session(event, [services.Item(ticket_type, 1)])
    second = services.create_session(event, [services.Item(ticket_type, 1)])
    services.expire_session(second.pk)
    return first, second


def test_events_are_listed_newest_first_and_filtered_by_type_and_session(api, two_sessions, open_session):
    first, second = two_sessions
    listed = api.get("/v1/webhook_events").json()
    types = [e["type"] for e in listed["data"]]
    assert types[0] == "checkout.session.expired" and len(types) == 4
    expired = api.get("/v1/webhook_events", {"type": "checkout.session.expired"}).json()["data"]
    assert [e["session"] for e in expired] == [second.public_id]
    about_first = api.get("/v1/webhook_events", {"session": first.public_id}).json()["data"]
    assert [e["type"] for e in about_first] == ["checkout.session.created"]
    assert about_first[0]["data"]["object"]["id"] == first.public_id
    assert api.get("/v1/webhook_events", {"session": "cs_nope"}).json()["data"] == []


def test_an_event_is_retrieved_with_its_deliveries_and_their_attempts(settings, api, organization, event, ticket_type):
    from checkout import services
    from webhooks import delivery as service

    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    with LocalServer(Reply(503, "busy")) as server:
        WebhookEndpoint.objects.create(organization=organization, url=server.url, enabled_events=["*"])
        services.create_session(event, [services.Item(ticket_type, 1)])
        service.deliver(Delivery.objects.get().pk)
    event_id = OutboxEvent.objects.get().public_id

    assert api.get(f"/v1/webhook_events/{event_id}").json()["id"] == event_id
    deliveries = api.get(f"/v1/webhook_events/{event_id}/deliveries").json()["data"]
    assert len(deliveries) == 1
    d = deliveries[0]
    assert d["status"] == "pending" and d["attempts_count"] == 1 and d["last_status_code"] == 503
    assert d["attempts"] == [{**d["attempts"][0], "number": 1, "status_code": 503, "response_body": "busy",
                              "error": "HTTP 503"}]


def test_a_failed_delivery_is_retried_through_the_api(api, organization, event, ticket_type, monkeypatch):
    from checkout import services
    from webhooks import tasks

    monkeypatch.setattr(tasks.deliver, "apply_async", lambda *a, **k: None)
    WebhookEndpoint.objects.create(organization=organization, url="http://127.0.0.1:9/hook", enabled_events=["*"])
    services.create_session(event, [services.Item(ticket_type, 1)])
    Delivery.objects.update(status="failed", next_attempt_at=None)
    delivery = Delivery.objects.get()

    response = api.post(f"/v1/deliveries/{delivery.public_id}/retry")
    assert response.status_code == 200 and response.json()["status"] == "pending"
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None

    Delivery.objects.update(status="succeeded")
    refused = api.post(f"/v1/deliveries/{delivery.public_id}/retry")
    assert refused.status_code == 409 and error(refused)["code"] == "not_retryable"


# --- Tenants ----------------------------------------------------------------------------------------
@pytest.fixture
def rivals_objects(other_organization):
    from checkout import services
    from tests.conftest import make_event

    event = make_event(other_organization, providers=())
    endpoint = WebhookEndpoint.objects.create(organization=other_organization, url="http://127.0.0.1:9/rival",
                                              enabled_events=["*"])
    session = services.create_session(event, [services.Item(event.ticket_types.get(), 1)])
    outbox_event = OutboxEvent.objects.get(session=session)
    return endpoint, outbox_event, Delivery.objects.get(event=outbox_event), session


def test_another_organizations_objects_are_404_through_the_api(api, rivals_objects):
    endpoint, outbox_event, delivery, session = rivals_objects
    e, ev, d = endpoint.public_id, outbox_event.public_id, delivery.public_id
    for method, path in [
        ("get", f"/v1/webhook_endpoints/{e}"), ("patch", f"/v1/webhook_endpoints/{e}"),
        ("delete", f"/v1/webhook_endpoints/{e}"), ("post", f"/v1/webhook_endpoints/{e}/rotate_secret"),
        ("post", f"/v1/webhook_endpoints/{e}/test"), ("get", f"/v1/webhook_events/{ev}"),
        ("get", f"/v1/webhook_events/{ev}/deliveries"), ("post", f"/v1/deliveries/{d}/retry"),
    ]:
        response = getattr(api, method)(path, {"description": "mine now"}, format="json")
        assert response.status_code == 404, (method, path)
        assert error(response)["code"] == "not_found"
    endpoint.refresh_from_db()
    assert endpoint.description == "" and endpoint.previous_secret == ""
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert delivery.attempts.count() == 0


def test_lists_show_only_the_organizations_own_objects(api, rivals_objects):
    endpoint, outbox_event, _, session = rivals_objects
    assert api.get("/v1/webhook_endpoints").json()["data"] == []
    assert api.get("/v1/webhook_events").json()["data"] == []
    assert api.get("/v1/webhook_events", {"session": session.public_id}).json()["data"] == []


def test_every_webhook_route_needs_an_api_key(client):
    for path in ["/v1/webhook_endpoints", "/v1/webhook_events"]:
        response = client.get(path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    assert client.post("/v1/webhook_endpoints", {}, content_type="application/json").status_code == 401


@override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False, DEBUG=False)
@pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "https://169.254.169.254/", "http://hooks.example.com/"])
def test_a_session_webhook_url_on_a_private_address_is_refused_in_production(api, event, ticket_type, url):
    from checkout.models import CheckoutSession

    response = api.post("/v1/checkout/sessions", {
        "event": event.public_id, "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 1}],
        "webhook_url": url,
    }, format="json")
    assert response.status_code == 400 and "webhook_url" in error(response)["fields"]
    assert not CheckoutSession.objects.exists() and not OutboxEvent.objects.exists()


def test_a_session_created_with_a_webhook_url_gets_a_delivery_to_it(api, event, ticket_type):
    body = api.post("/v1/checkout/sessions", {
        "event": event.public_id, "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 1}],
        "webhook_url": "https://hooks.example.com/session",
    }, format="json").json()
    delivery = Delivery.objects.get()
    assert delivery.target_url == "https://hooks.example.com/session" and delivery.endpoint is None
    assert delivery.event.session.public_id == body["id"] and delivery.event.type == "checkout.session.created"
