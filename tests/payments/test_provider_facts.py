"""Each provider declares its own facts: credentials, environment fallback, webhook URL."""

import pytest
from django.core.management import call_command

from payments.base import PaymentProvider
from payments.models import IntegrationSettings, Payment, Refund
from payments.registry import PROVIDER_CLASSES, config_for

from .helpers import configure

ENVIRONMENT = {
    "STRIPE_SECRET_KEY": "sk_env", "STRIPE_WEBHOOK_SECRET": "whsec_env",
    "EASYPAY_ACCOUNT_ID": "acc-env", "EASYPAY_API_KEY": "key-env", "EASYPAY_WEBHOOK_SECRET": "ep-env",
    "IFTHENPAY_MB_KEY": "MB-env", "IFTHENPAY_MBWAY_KEY": "MBW-env", "IFTHENPAY_ENTITY": "12345",
    "IFTHENPAY_SUB_ENTITY": "", "IFTHENPAY_ANTI_PHISHING_KEY": "anti-env",
}


def test_the_provider_fields_offer_each_class_under_its_own_label():
    expected = [(code, cls.label) for code, cls in PROVIDER_CLASSES.items()]
    for model in (IntegrationSettings, Payment, Refund):
        assert model._meta.get_field("provider").choices == expected


@pytest.mark.django_db
def test_adding_a_provider_to_the_registry_needs_no_migration(monkeypatch):
    class Fakepay(PaymentProvider):
        name, label = "fakepay", "Fakepay"

    monkeypatch.setitem(PROVIDER_CLASSES, "fakepay", Fakepay)
    assert ("fakepay", "Fakepay") in Payment._meta.get_field("provider").choices
    call_command("makemigrations", "--check", "--dry-run", interactive=False, verbosity=0)  # SystemExit(1) if one were needed


@pytest.mark.parametrize(("provider", "credentials", "secret"), [
    ("stripe", {"secret_key": "sk_env"}, "whsec_env"),
    ("easypay", {"account_id": "acc-env", "api_key": "key-env"}, "ep-env"),
    ("ifthenpay", {"mb_key": "MB-env", "mbway_key": "MBW-env", "entity": "12345"}, "anti-env"),  # unset ones left out
    ("sandbox", {}, ""),
])
def test_the_environment_fallback_is_read_from_each_providers_own_settings(settings, provider, credentials, secret):
    for name, value in ENVIRONMENT.items():
        setattr(settings, name, value)
    config = config_for(provider, None)
    assert (config.credentials, config.webhook_secret, config.from_environment) == (credentials, secret, True)


@pytest.mark.django_db
def test_a_tenants_own_settings_win_over_the_environment(settings, organization):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_env", "whsec_env"
    configure(organization, "stripe", secret="whsec_mine", credentials={"secret_key": "sk_mine"})
    config = config_for("stripe", organization)
    assert (config.credentials, config.webhook_secret, config.from_environment) == ({"secret_key": "sk_mine"},
                                                                                   "whsec_mine", False)


@pytest.mark.parametrize(("provider", "suffix"), [
    ("stripe", ""),
    ("sandbox", ""),
    ("ifthenpay", "?key=[ANTI_PHISHING_KEY]&orderId=[ORDER_ID]&amount=[AMOUNT]&requestId=[REQUEST_ID]"
                  "&entity=[ENTITY]&reference=[REFERENCE]&payment_datetime=[PAYMENT_DATETIME]"),
])
def test_each_provider_gives_the_webhook_url_its_dashboard_needs(settings, provider, suffix):
    settings.PUBLIC_BASE_URL = "https://tickets.example.com"
    url = PROVIDER_CLASSES[provider].webhook_url(None)
    assert url == f"https://tickets.example.com/api/webhooks/{provider}/_{suffix}"


def test_easypays_url_carries_the_secret_as_its_password_not_in_its_query(settings):
    settings.PUBLIC_BASE_URL = "https://tickets.example.com"
    url = PROVIDER_CLASSES["easypay"].webhook_url(None)
    assert url == "https://easypay:<your webhook secret>@tickets.example.com/api/webhooks/easypay/_"


@pytest.mark.django_db
def test_the_admin_form_offers_only_the_providers_own_credential_fields(client, organizer, organization):
    row = configure(organization, "easypay")
    client.force_login(organizer)
    page = client.get(f"/admin/payments/integrationsettings/{row.pk}/change/").content.decode()
    assert "Account ID" in page and "API key" in page
    assert "Secret key (sk_live_" not in page and "mbWayKey" not in page
    assert "it is the password in the notification URL you give Easypay" in page  # its webhook secret help
