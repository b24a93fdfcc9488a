"""Organizer admin for payment integrations and the inbound webhook log."""

import json

import pytest
import responses

from checkout.models import Status
from payments.models import IntegrationSettings
from webhooks.models import InboundWebhook

from .helpers import STRIPE_SECRET, checkout_object, configure, pending_session, post_stripe, stripe_event

pytestmark = pytest.mark.django_db
SECRET_KEY = "sk_test_51Hsecretsecretsecret9999"


@pytest.fixture
def stripe_row(organization):
    return configure(organization, "stripe", secret=STRIPE_SECRET, credentials={"secret_key": SECRET_KEY})


def test_the_settings_page_masks_secrets_and_shows_the_exact_webhook_url(client, settings, organizer, organization,
                                                                         stripe_row):
    settings.PUBLIC_BASE_URL = "https://tickets.example.com"
    client.force_login(organizer)
    page = client.get(f"/admin/payments/integrationsettings/{stripe_row.pk}/change/").content.decode()
    assert f"https://tickets.example.com/api/webhooks/stripe/{organization.public_id}" in page
    assert SECRET_KEY not in page and STRIPE_SECRET not in page
    assert "sk_test_…9999" in page and "whsec_…aaaa" in page
    assert "Account ID" not in page  # only Stripe's fields for a Stripe integration


def _post_change(client, row, **data):
    form = {"enabled": "on", "cred_secret_key": "", "webhook_secret_input": "", **data}
    return client.post(f"/admin/payments/integrationsettings/{row.pk}/change/", form)


def test_blank_fields_keep_the_stored_secrets(client, organizer, stripe_row):
    client.force_login(organizer)
    response = _post_change(client, stripe_row)
    assert response.status_code == 302, response.content.decode()[:2000]
    stripe_row.refresh_from_db()
    assert stripe_row.webhook_secret == STRIPE_SECRET and json.loads(stripe_row.credentials)["secret_key"] == SECRET_KEY


@responses.activate
def test_new_values_replace_the_secrets_and_are_stored_encrypted(client, organizer, stripe_row):
    from django.db import connection

    responses.get("https://api.stripe.com/v1/balance", json={"object": "balance", "available": []})
    client.force_login(organizer)
    _post_change(client, stripe_row, cred_secret_key="sk_test_new_key_123456", webhook_secret_input="whsec_new_one_12345")
    stripe_row.refresh_from_db()
    assert stripe_row.webhook_secret == "whsec_new_one_12345"
    assert json.loads(stripe_row.credentials) == {"secret_key": "sk_test_new_key_123456"}
    with connection.cursor() as cursor:
        cursor.execute("select credentials, webhook_secret from payments_integrationsettings where id = %s", [stripe_row.pk])
        raw = " ".join(cursor.fetchone())
    assert "sk_test_new" not in raw and "whsec_new" not in raw and raw.startswith("enc1:")


def test_the_webhook_secret_can_be_removed_to_fall_back_to_the_environment(client, organizer, stripe_row):
    client.force_login(organizer)
    _post_change(client, stripe_row, clear_webhook_secret="on")
    stripe_row.refresh_from_db()
    assert stripe_row.webhook_secret == ""


def test_an_organizer_cannot_see_another_organizations_integration(client, organizer, other_organization):
    theirs = configure(other_organization, "stripe", secret="whsec_theirs_123456789", credentials={"secret_key": "sk_x"})
    client.force_login(organizer)
    assert client.get(f"/admin/payments/integrationsettings/{theirs.pk}/change/").status_code in (302, 404)
    assert "rival" not in client.get("/admin/payments/integrationsettings/").content.decode().lower()


def test_the_inbound_log_is_read_only_and_tenant_scoped(client, organizer, organization, other_organization, stripe_row):
    InboundWebhook.objects.create(provider="stripe", organization=organization, event_id="evt_mine", outcome="processed",
                                  verified=True, payload='{"x": "<script>alert(1)</script>"}')
    InboundWebhook.objects.create(provider="stripe", organization=other_organization, event_id="evt_theirs",
                                  outcome="processed", verified=True)
    InboundWebhook.objects.create(provider="stripe", organization=None, event_id="evt_env", outcome="processed")
    client.force_login(organizer)
    listing = client.get("/admin/webhooks/inboundwebhook/?outcome=processed&verified__exact=1&provider=stripe")
    page = listing.content.decode()
    assert "evt_mine" in page and "evt_theirs" not in page and "evt_env" not in page
    mine = InboundWebhook.objects.get(event_id="evt_mine")
    detail = client.get(f"/admin/webhooks/inboundwebhook/{mine.pk}/change/").content.decode()
    assert "<script>alert(1)</script>" not in detail and "&lt;script&gt;" in detail
    assert client.get("/admin/webhooks/inboundwebhook/add/").status_code == 403


def test_reprocess_applies_a_delivery_that_failed_for_want_of_configuration(client, settings, organizer, organization,
                                                                            event, stripe_row):
    """A verified event arrived before the session could be found (say, wrong org in the
    URL at the provider, fixed since); reprocessing after the fix applies it, once."""
    session, _ = pending_session(event, provider="stripe")
    body = stripe_event("checkout.session.completed", checkout_object(session))
    row = InboundWebhook.objects.create(provider="stripe", organization=organization, verified=True, outcome="failed",
                                        error="transient: OperationalError", payload=json.dumps(body))
    client.force_login(organizer)
    response = client.post("/admin/webhooks/inboundwebhook/", {"action": "reprocess_selected", "_selected_action": [row.pk]},
                           follow=True)
    assert "Reprocessed 1: 1 processed" in response.content.decode()
    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    row.refresh_from_db()
    assert row.outcome == "processed" and row.session == session
    client.post("/admin/webhooks/inboundwebhook/", {"action": "reprocess_selected", "_selected_action": [row.pk]})
    assert session.transitions.filter(trigger="pay").count() == 1


def test_reprocess_refuses_unverified_deliveries(client, organizer, organization, event, stripe_row):
    session, _ = pending_session(event, provider="stripe")
    post_stripe(client, organization.public_id, stripe_event("checkout.session.completed", checkout_object(session)),
                secret="whsec_forged_forged")
    row = InboundWebhook.objects.get()
    assert not row.verified
    client.force_login(organizer)
    client.post("/admin/webhooks/inboundwebhook/", {"action": "reprocess_selected", "_selected_action": [row.pk]})
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING


def test_enabled_providers_are_what_the_attendee_can_choose(organization, event):
    from payments.registry import enabled_providers

    configure(organization, "stripe", secret=STRIPE_SECRET)
    configure(organization, "easypay", enabled=False)
    assert enabled_providers(organization) == ["sandbox", "stripe"]
    assert IntegrationSettings.objects.filter(organization=organization).count() == 3


def test_an_organizer_adds_an_easypay_integration_for_their_own_organization(client, organizer, organization,
                                                                             other_organization):
    client.force_login(organizer)
    form = {"organization": organization.pk, "provider": "easypay", "enabled": "on", "cred_account_id": "acc-123",
            "cred_api_key": "key-4567890123", "webhook_secret_input": "my-own-long-secret-42"}
    response = client.post("/admin/payments/integrationsettings/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    row = IntegrationSettings.objects.get(organization=organization, provider="easypay")
    assert json.loads(row.credentials) == {"account_id": "acc-123", "api_key": "key-4567890123"}
    assert row.webhook_secret == "my-own-long-secret-42"
    page = client.get(f"/admin/payments/integrationsettings/{row.pk}/change/").content.decode()
    # The secret goes in as the URL's password (HTTP Basic): in no request line, so in no access log.
    assert "://easypay:&lt;your webhook secret&gt;@" in page and "?secret=" not in page.split("Webhook URL")[-1][:400]
    assert f"/api/webhooks/easypay/{organization.public_id}" in page and "my-own-long-secret-42" not in page


def test_credentials_a_provider_does_not_use_are_refused(client, organizer, organization):
    client.force_login(organizer)
    form = {"organization": organization.pk, "provider": "stripe", "enabled": "on", "cred_mb_key": "MB-1"}
    response = client.post("/admin/payments/integrationsettings/add/", form)
    assert response.status_code == 200 and "does not use this" in response.content.decode()
    assert not IntegrationSettings.objects.filter(provider="stripe").exists()


def test_an_organizer_cannot_add_an_integration_to_another_organization(client, organizer, other_organization):
    client.force_login(organizer)
    form = {"organization": other_organization.pk, "provider": "stripe", "enabled": "on", "cred_secret_key": "sk_x"}
    response = client.post("/admin/payments/integrationsettings/add/", form)
    assert response.status_code == 200
    assert not IntegrationSettings.objects.filter(organization=other_organization).exists()


# --- Setting up payments safely ------------------------------------------------------------------
@responses.activate
def test_a_new_stripe_key_is_checked_against_stripe_and_a_refused_one_is_not_saved(client, organizer, stripe_row):
    refused = responses.get("https://api.stripe.com/v1/balance", status=401, json={"error": {
        "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_***************9999"}})
    client.force_login(organizer)
    response = _post_change(client, stripe_row, cred_secret_key="sk_test_typo_key_9999")
    page = response.content.decode()
    assert response.status_code == 200 and "Stripe refused this secret key: Invalid API Key provided" in page
    assert refused.call_count == 1
    assert responses.calls[0].request.headers["Authorization"] == "Bearer sk_test_typo_key_9999"
    stripe_row.refresh_from_db()
    assert json.loads(stripe_row.credentials)["secret_key"] == SECRET_KEY  # nothing changed


@responses.activate
def test_a_stripe_key_stripe_accepts_is_saved_and_an_unchanged_one_is_not_asked_again(client, organizer, stripe_row):
    balance = responses.get("https://api.stripe.com/v1/balance", json={"object": "balance", "available": []})
    client.force_login(organizer)
    assert _post_change(client, stripe_row, cred_secret_key="sk_live_good_key_1234").status_code == 302
    assert _post_change(client, stripe_row).status_code == 302  # blank: the stored key, not asked again
    assert balance.call_count == 1
    stripe_row.refresh_from_db()
    assert json.loads(stripe_row.credentials)["secret_key"] == "sk_live_good_key_1234"


@responses.activate
def test_stripe_unreachable_is_said_and_nothing_is_saved(client, organizer, stripe_row):
    responses.get("https://api.stripe.com/v1/balance", status=503, json={"error": {"message": "down"}})
    client.force_login(organizer)
    response = _post_change(client, stripe_row, cred_secret_key="sk_test_other_key_1")
    assert response.status_code == 200 and "Stripe could not be asked whether this key works" in response.content.decode()
    stripe_row.refresh_from_db()
    assert json.loads(stripe_row.credentials)["secret_key"] == SECRET_KEY


def test_saving_without_a_webhook_secret_warns_that_payments_wait_for_the_attendees_return(client, organizer,
                                                                                            stripe_row, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    client.force_login(organizer)
    response = _post_change(client, stripe_row, clear_webhook_secret="on")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "has no webhook signing secret" in page and "confirmed only when the attendee comes back" in page
    response = _post_change(client, stripe_row, webhook_secret_input="whsec_back_again_1234")
    assert "has no webhook signing secret" not in client.get(response["Location"]).content.decode()


def test_the_list_shows_which_providers_are_in_test_mode(client, organizer, organization, stripe_row):
    configure(organization, "sandbox")
    client.force_login(organizer)
    page = client.get("/admin/payments/integrationsettings/").content.decode()
    assert page.count("provider-mode-test") == 2  # the sk_test_ key and the sandbox
    stripe_row.credentials = json.dumps({"secret_key": "sk_live_51Hlive"})
    stripe_row.save()
    page = client.get("/admin/payments/integrationsettings/").content.decode()
    assert "provider-mode-live" in page and page.count("provider-mode-test") == 1
