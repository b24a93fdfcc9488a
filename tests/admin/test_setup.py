"""Setting up without traps: the gate, its test button, provider credentials, the organization
chosen for you, and the back office's own names."""

import json

import pytest

from ievents.models import Membership, Organization
from payments.models import IntegrationSettings
from tests.conftest import event_change_form, make_event, make_organizer
from tests.servers import LocalServer, Reply
from webhooks.models import GateCall, GateSettings

pytestmark = pytest.mark.django_db
INTEGRATIONS = "/admin/payments/integrationsettings/"


@pytest.fixture
def admin_client(client, organizer):
    client.force_login(organizer)
    return client


def gate_form(event, **gate):
    data = {**event_change_form(event), "gate-TOTAL_FORMS": 1, "gate-0-event": event.pk,
            "gate-0-url": "https://gate.example.com/check", "gate-0-timeout_ms": 3000, "gate-0-on_error": "block",
            "gate-0-denial_message": "Members only.", "gate-0-error_message": "Try again later."}
    data.update({f"gate-0-{k}": v for k, v in gate.items()})
    return {k: v for k, v in data.items() if v is not None}


def test_a_new_gate_starts_enabled(admin_client, event):
    html = admin_client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()
    assert 'name="gate-__prefix__-enabled" id="id_gate-__prefix__-enabled" checked' in html


def test_a_gate_saved_with_a_url_but_disabled_is_called_out(admin_client, event):
    admin_client.post(f"/admin/ievents/event/{event.pk}/change/", gate_form(event, enabled="on"))
    gate = GateSettings.objects.get(event=event)
    data = {**gate_form(event), "gate-INITIAL_FORMS": 1, "gate-0-id": gate.pk}  # Enabled unticked
    response = admin_client.post(f"/admin/ievents/event/{event.pk}/change/", data, follow=True)
    gate.refresh_from_db()
    assert not gate.enabled
    assert "the pre-payment gate is disabled" in response.content.decode()


def test_the_event_page_has_a_send_test_request_button(admin_client, event):
    GateSettings.objects.create(event=event, url="https://gate.example.com/", enabled=True)
    html = admin_client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()
    assert 'form="gate-test-form"' in html and "Send test request" in html
    assert f'action="/admin/ievents/event/{event.pk}/gate-test/"' in html


def test_the_test_shows_status_time_and_what_the_attendee_would_see(admin_client, event):
    with LocalServer(Reply(403, {"message": "<b>Members</b> only"})) as server:
        GateSettings.objects.create(event=event, url=server.url, enabled=True)
        response = admin_client.post(f"/admin/ievents/event/{event.pk}/gate-test/")
    html = response.content.decode()
    assert response.status_code == 200 and len(server.requests) == 1
    assert "HTTP 403" in html and "Denied" in html and " ms (timeout 3000 ms)" in html
    assert '<td class="attendee-sees">&lt;b&gt;Members&lt;/b&gt; only</td>' in html
    assert "disabled" not in html
    assert GateCall.objects.get().is_test


def test_the_test_of_a_failing_gate_shows_the_organizers_error_message(admin_client, event):
    with LocalServer(Reply(500)) as server:
        GateSettings.objects.create(event=event, url=server.url, enabled=True, error_message="Back soon.")
        html = admin_client.post(f"/admin/ievents/event/{event.pk}/gate-test/").content.decode()
    assert "HTTP 500" in html and '<td class="attendee-sees">Back soon.</td>' in html


def test_the_test_warns_when_the_gate_is_disabled(admin_client, event):
    with LocalServer(Reply(200)) as server:
        GateSettings.objects.create(event=event, url=server.url, enabled=False)
        html = admin_client.post(f"/admin/ievents/event/{event.pk}/gate-test/").content.decode()
    assert "This gate is disabled" in html and "HTTP 200" in html


def test_the_test_without_a_gate_says_what_to_do(admin_client, event):
    html = admin_client.post(f"/admin/ievents/event/{event.pk}/gate-test/").content.decode()
    assert "no gate URL yet" in html and not GateCall.objects.exists()


def test_the_test_button_is_not_for_viewers_strangers_or_get(client, admin_client, event, other_organization):
    theirs = make_event(other_organization, name="Theirs")
    with LocalServer(Reply(200)) as server:
        GateSettings.objects.create(event=theirs, url=server.url, enabled=True)
        GateSettings.objects.create(event=event, url=server.url, enabled=True)
        assert admin_client.post(f"/admin/ievents/event/{theirs.pk}/gate-test/").status_code == 404
        assert admin_client.get(f"/admin/ievents/event/{event.pk}/gate-test/").status_code == 403
        viewer = make_organizer(event.organization, username="vera")
        Membership.objects.filter(user=viewer).update(role="viewer")
        client.force_login(viewer)
        assert client.post(f"/admin/ievents/event/{event.pk}/gate-test/").status_code == 403
    assert server.requests == [] and not GateCall.objects.exists()


# Payment providers

def add_integration(client, organization, provider, **fields):
    return client.post(f"{INTEGRATIONS}add/", {"organization": organization.pk, "provider": provider, **fields})


def test_a_provider_cannot_be_enabled_without_its_credentials(admin_client, organization):
    response = add_integration(admin_client, organization, "stripe", enabled="on")
    assert response.status_code == 200
    assert "Stripe needs its Secret key (sk_live_… or sk_test_…) before it can be enabled" in response.content.decode()
    assert not IntegrationSettings.objects.filter(provider="stripe").exists()
    response = add_integration(admin_client, organization, "easypay", enabled="on", cred_account_id="acc-1")
    assert "Easypay needs its API key before it can be enabled" in response.content.decode()


def test_a_provider_without_credentials_can_be_saved_disabled(admin_client, organization):
    assert add_integration(admin_client, organization, "stripe").status_code == 302
    assert not IntegrationSettings.objects.get(provider="stripe").enabled


def test_the_platforms_credentials_count_for_an_organization_without_its_own(admin_client, organization, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_platform_1234567890"
    assert add_integration(admin_client, organization, "stripe", enabled="on").status_code == 302


def test_ifthenpay_needs_one_of_its_keys(admin_client, organization):
    response = add_integration(admin_client, organization, "ifthenpay", enabled="on")
    assert "Multibanco key (mbKey) or MB WAY key (mbWayKey)" in response.content.decode()
    assert add_integration(admin_client, organization, "ifthenpay", enabled="on",
                           cred_mbway_key="MBW-123").status_code == 302
    assert json.loads(IntegrationSettings.objects.get(provider="ifthenpay").credentials) == {"mbway_key": "MBW-123"}


def test_the_add_form_groups_each_providers_fields(admin_client):
    html = admin_client.get(f"{INTEGRATIONS}add/").content.decode()
    for provider, field in (("stripe", "cred_secret_key"), ("easypay", "cred_api_key"), ("ifthenpay", "cred_mb_key")):
        assert f"provider-fields provider-{provider}" in html and f'name="{field}"' in html
    assert "admin_ievents.js" in html


def test_the_sandbox_shows_no_webhook_url(admin_client, organization):
    sandbox, _ = IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox")
    html = admin_client.get(f"{INTEGRATIONS}{sandbox.pk}/change/").content.decode()
    assert "/api/webhooks/sandbox/" not in html and "Webhook URL" not in html


# The organization, chosen for you

def test_a_one_organization_organizer_finds_it_chosen_and_hidden(admin_client, organization):
    html = admin_client.get("/admin/ievents/event/add/").content.decode()
    assert f'<input type="hidden" name="organization" value="{organization.pk}"' in html
    assert '<select name="organization"' not in html
    response = admin_client.post("/admin/webhooks/webhookendpoint/add/", {
        "organization": organization.pk, "url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]})
    assert response.status_code == 200 and "Copy your new secret now" in response.content.decode()


def test_an_organizer_of_two_chooses(client, organization):
    second = Organization.objects.create(name="Second Org", slug="second")
    user = make_organizer(organization)
    Membership.objects.create(user=user, organization=second)
    client.force_login(user)
    html = client.get("/admin/ievents/event/add/").content.decode()
    assert '<select name="organization"' in html and "Second Org" in html and "Acme Events" in html


# The back office's own names

def test_the_admin_is_branded_and_names_its_screens(admin_client, organization):
    IntegrationSettings.objects.get_or_create(organization=organization, provider="sandbox")
    html = admin_client.get("/admin/").content.decode()
    assert '<div id="site-name"><a href="/admin/">iEvents</a></div>' in html and "Django administration" not in html
    for title in ("Orders", "Payments", "Your systems' notification addresses", "Gate checks"):
        assert f">{title}</a>" in html.replace("&#x27;", "'"), title
    assert "Checkout sessions" not in html and "Payment integrations" not in html
    assert "<h1>Payments</h1>" in admin_client.get(INTEGRATIONS).content.decode()
