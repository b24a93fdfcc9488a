"""The organizer's admin for notifications: health, deliveries with attempts, the actions,
and nothing of another organization's."""

import re

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import make_event
from tests.servers import LocalServer, Reply
from webhooks import delivery as service
from webhooks.models import Delivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer(client, organizer):
    """The shared organizer, logged in."""
    client.force_login(organizer)
    return organizer


@pytest.fixture
def rival_delivery(other_organization):
    from checkout import services

    event = make_event(other_organization, name="Theirs", providers=())
    WebhookEndpoint.objects.create(organization=other_organization, url="http://127.0.0.1:9/rival-hook",
                                   enabled_events=["*"])
    services.create_session(event, [services.Item(event.ticket_types.get(), 1)])
    return Delivery.objects.get(endpoint__organization=other_organization)


def action(client, path, name, *pks):
    return client.post(path, {"action": name, "_selected_action": [str(pk) for pk in pks]}, follow=True)


def test_the_endpoint_list_shows_health_and_only_the_organizations_own(
        settings, client, organizer, endpoint_for, new_session, rival_delivery):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0]
    answers = [Reply(500), Reply(200)]
    with LocalServer(lambda _r: answers.pop(0) if len(answers) > 1 else answers[0]) as server:
        endpoint_for(server.url)
        new_session()
        pk = Delivery.objects.get(endpoint__organization=organizer.memberships.get().organization).pk
        service.deliver(pk)
        service.deliver(pk)
    page = client.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert server.url in page and "50% of 2" in page
    assert "rival-hook" not in page


def test_a_delivery_page_shows_its_attempts(settings, client, organizer, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    with LocalServer(Reply(502, "<b>upstream down</b>")) as server:
        endpoint_for(server.url)
        new_session()
        delivery = Delivery.objects.get()
        service.deliver(delivery.pk)
    page = client.get(f"/admin/webhooks/delivery/{delivery.pk}/change/").content.decode()
    assert "502" in page and "&lt;b&gt;upstream down&lt;/b&gt;" in page and "<b>upstream down</b>" not in page


def listed_targets(page: str) -> list[str]:
    """The target URLs in the result rows (the filter sidebar names endpoints too)."""
    return re.findall(r'<td class="field-target_url"><a href="[^"]*">([^<]*)</a></td>', page)


def test_deliveries_filter_by_status_type_and_endpoint(client, organizer, endpoint_for, new_session):
    first = endpoint_for("http://127.0.0.1:9/first")
    second = endpoint_for("http://127.0.0.1:9/second")
    new_session()
    Delivery.objects.filter(endpoint=first).update(status="failed")
    assert sorted(listed_targets(client.get("/admin/webhooks/delivery/").content.decode())) == [first.url, second.url]
    failed = client.get("/admin/webhooks/delivery/?status__exact=failed").content.decode()
    assert listed_targets(failed) == [first.url]
    by_endpoint = client.get(f"/admin/webhooks/delivery/?endpoint={second.pk}").content.decode()
    assert listed_targets(by_endpoint) == [second.url]
    by_type = client.get("/admin/webhooks/delivery/?event__type=checkout.session.paid").content.decode()
    assert listed_targets(by_type) == []


def test_another_organizations_deliveries_cannot_be_seen_or_retried(client, organizer, rival_delivery):
    assert "rival-hook" not in client.get("/admin/webhooks/delivery/").content.decode()
    response = client.get(f"/admin/webhooks/delivery/{rival_delivery.pk}/change/")
    assert response.status_code in (302, 404)
    assert listed_targets(client.get(f"/admin/webhooks/delivery/?endpoint={rival_delivery.endpoint_id}").content.decode()) == []
    Delivery.objects.filter(pk=rival_delivery.pk).update(status="failed")
    action(client, "/admin/webhooks/delivery/", "retry_now", rival_delivery.pk)
    rival_delivery.refresh_from_db()
    assert rival_delivery.status == "failed"


def test_retry_now_requeues_a_dead_letter(client, organizer, endpoint_for, new_session, monkeypatch):
    from webhooks import tasks

    monkeypatch.setattr(tasks.deliver, "apply_async", lambda *a, **k: None)
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    Delivery.objects.update(status="failed", next_attempt_at=None)
    page = action(client, "/admin/webhooks/delivery/", "retry_now", Delivery.objects.get().pk).content.decode()
    assert "queued to be sent now" in page
    assert Delivery.objects.get().status == "pending"


def test_send_test_event_calls_the_endpoint_and_reports(client, organizer, endpoint_for):
    with LocalServer(Reply(204)) as server:
        endpoint = endpoint_for(server.url)
        page = action(client, "/admin/webhooks/webhookendpoint/", "send_test_event", endpoint.pk).content.decode()
    assert "answered 204" in page
    Webhook(endpoint.secret).verify(server.requests[0].body, server.requests[0].headers)


def test_rotate_secret_shows_the_new_secret_once(client, organizer, endpoint_for):
    endpoint = endpoint_for("http://127.0.0.1:9/hook")
    old = endpoint.secret
    page = action(client, "/admin/webhooks/webhookendpoint/", "rotate_endpoint_secret", endpoint.pk).content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in page and endpoint.previous_secret == old
    assert endpoint.secret not in client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()


def test_enable_clears_the_disabled_reason(client, organizer, endpoint_for):
    endpoint = endpoint_for("http://127.0.0.1:9/hook", enabled=False, disabled_reason="410 Gone")
    action(client, "/admin/webhooks/webhookendpoint/", "enable_endpoints", endpoint.pk)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_creating_an_endpoint_in_the_admin_checks_the_url_and_shows_the_secret_once(
        settings, client, organizer, organization):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.DEBUG = False
    refused = client.post("/admin/webhooks/webhookendpoint/add/", {
        "organization": organization.pk, "url": "https://10.0.0.1/hook", "enabled_events": ["*"]})
    assert refused.status_code == 200 and not WebhookEndpoint.objects.exists()
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    page = client.post("/admin/webhooks/webhookendpoint/add/", {
        "organization": organization.pk, "url": "https://hooks.example.com/x",
        "enabled_events": ["checkout.session.paid"]}, follow=True).content.decode()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.enabled_events == ["checkout.session.paid"] and endpoint.secret in page
