"""Which providers exist, and the credentials each one runs with for an organization."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ievents.models import Organization

from .base import PaymentProvider, ProviderConfig, ProviderNotConfigured
from .easypay import EasypayProvider
from .ifthenpay import IfthenpayProvider
from .models import IntegrationSettings
from .sandbox import SandboxProvider
from .stripe import StripeProvider

# Every provider, by code, in the order attendees and organizers see them. Each class
# declares its code, names, credentials, environment fallback and webhook URL; adding a
# provider is its file and its class here (docs/architecture.md, "Adding a provider").
PROVIDER_CLASSES: dict[str, type[PaymentProvider]] = {
    cls.name: cls for cls in (SandboxProvider, StripeProvider, EasypayProvider, IfthenpayProvider)
}


def config_for(provider: str, organization: Organization | None) -> ProviderConfig:
    """The tenant's settings where it has them, each missing piece from the environment."""
    fallback = PROVIDER_CLASSES[provider].environment_config()
    if organization is None:
        return fallback
    try:  # one per organization and provider (a unique constraint)
        row = IntegrationSettings.objects.get(organization=organization, provider=provider)
    except IntegrationSettings.DoesNotExist:
        return ProviderConfig(organization.pk, fallback.credentials, fallback.webhook_secret, True)
    credentials = json.loads(row.credentials) if row.credentials else {}
    return ProviderConfig(
        organization_id=organization.pk,
        credentials=credentials or fallback.credentials,
        webhook_secret=row.webhook_secret or fallback.webhook_secret,
        from_environment=not row.webhook_secret,
    )


def get_provider(provider: str, organization: Organization | None) -> PaymentProvider:
    if provider not in PROVIDER_CLASSES:
        raise ProviderNotConfigured(f"unknown provider {provider!r}")
    return PROVIDER_CLASSES[provider](config_for(provider, organization))


def enabled_providers(organization: Organization, event=None) -> list[str]:
    """Providers the attendee may choose: enabled for the organization (and the event)."""
    rows = IntegrationSettings.objects.filter(organization=organization, enabled=True).values_list("provider", flat=True)
    names = [p for p in PROVIDER_CLASSES if p in set(rows)]
    if event is not None and event.payment_providers:
        names = [p for p in names if p in event.payment_providers]
    return names


# --- Inbound routes: an organization and its provider settings, kept per process ---------
# Every provider webhook needs the organization behind ``{org}`` and its decrypted secret
# before anything else: two statements and Fernet decryptions on each delivery, for rows
# that change a few times a year. Each process keeps them ROUTE_CACHE_SECONDS, and how stale
# they can be is bounded:
# - saving or deleting an organization or an integration clears this process's copy
#   (signals, ``PaymentsConfig.ready``), and so does a change of settings (tests);
# - a request that fails verification with a kept copy is verified again with fresh rows
#   (``webhooks.inbound.receive``), so a new secret works at once everywhere;
# - so the only staleness left: for at most ROUTE_CACHE_SECONDS after a rotation, another
#   process may still accept the secret rotated out (Stripe itself lets an old secret
#   overlap for up to a day), or an integration or organization just deleted.
ROUTE_CACHE_SECONDS = 10.0
ROUTE_CACHE_SIZE = 1000  # organizations per process; past it the cache starts over


@dataclass(frozen=True)
class InboundRoute:
    organization: Organization
    config: ProviderConfig
    kept: bool  # from this process's cache, not read just now


_routes: dict[tuple[str, str], tuple[float, Organization, ProviderConfig]] = {}


def inbound_route(provider: str, org_public_id: str, *, fresh: bool = False) -> InboundRoute | None:
    """The organization with this public id and its settings for ``provider``; None if none.

    Read at most every ROUTE_CACHE_SECONDS per process (see above); ``fresh`` reads it now.
    """
    key = (provider, org_public_id)
    kept = None if fresh else _routes.get(key)
    if kept is not None and kept[0] > time.monotonic():
        return InboundRoute(kept[1], kept[2], kept=True)
    organization = Organization.objects.filter(public_id=org_public_id).first()
    if organization is None:
        _routes.pop(key, None)
        return None
    config = config_for(provider, organization)
    if len(_routes) >= ROUTE_CACHE_SIZE:
        _routes.clear()
    _routes[key] = (time.monotonic() + ROUTE_CACHE_SECONDS, organization, config)
    return InboundRoute(organization, config, kept=False)


def forget_inbound_routes(**_signal) -> None:
    """Drop every kept route: an organization, an integration or the settings changed."""
    _routes.clear()
