"""The organization and its provider secret, kept per process for a few seconds
(``payments.registry.inbound_route``): how stale they may be, and no staler."""

import pytest

from payments import registry
from payments.models import IntegrationSettings
from webhooks.models import InboundWebhook

from ..payments.helpers import STRIPE_SECRET, checkout_object, configure, pending_session, post_stripe, stripe_event

pytestmark = pytest.mark.django_db

NEW_SECRET = "whsec_rotated_" + "n" * 24


@pytest.fixture
def stripe_org(organization):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    return organization


def _event(event):
    session, _ = pending_session(event, provider="stripe")
    return stripe_event("checkout.session.completed", checkout_object(session))


def _later(monkeypatch, seconds):
    now = registry.time.monotonic()
    monkeypatch.setattr(registry.time, "monotonic", lambda: now + seconds)


def test_a_secret_rotated_in_this_process_refuses_the_old_one_at_once(client, stripe_org, event):
    assert post_stripe(client, stripe_org.public_id, _event(event)).status_code == 200  # now kept
    configure(stripe_org, "stripe", secret=NEW_SECRET)  # admin's save: the kept copy is dropped
    assert post_stripe(client, stripe_org.public_id, _event(event)).status_code == 400
    assert post_stripe(client, stripe_org.public_id, _event(event), secret=NEW_SECRET).status_code == 200


def test_a_secret_rotated_by_another_process_is_accepted_at_once(client, stripe_org, event):
    assert post_stripe(client, stripe_org.public_id, _event(event)).status_code == 200  # now kept
    # Another web process saved it: no signal reaches this one (a queryset update sends none).
    IntegrationSettings.objects.filter(organization=stripe_org).update(webhook_secret=NEW_SECRET)
    response = post_stripe(client, stripe_org.public_id, _event(event), secret=NEW_SECRET)
    assert response.status_code == 200 and response.json()["outcome"] == "processed"  # refused, re-read, verified


def test_the_old_secret_rotated_out_by_another_process_stops_working_within_the_ttl(client, stripe_org, event,
                                                                                  monkeypatch):
    assert post_stripe(client, stripe_org.public_id, _event(event)).status_code == 200
    IntegrationSettings.objects.filter(organization=stripe_org).update(webhook_secret=NEW_SECRET)
    # The bounded staleness the registry documents: still kept, still accepted...
    assert post_stripe(client, stripe_org.public_id, _event(event)).status_code == 200
    # ...but not once the kept copy is older than ROUTE_CACHE_SECONDS.
    _later(monkeypatch, registry.ROUTE_CACHE_SECONDS + 0.1)
    assert post_stripe(client, stripe_org.public_id, _event(event)).status_code == 400
    assert InboundWebhook.objects.filter(verified=False, outcome="rejected").count() == 1


def test_a_deleted_organization_is_not_found_at_once(client, other_organization):
    configure(other_organization, "stripe", secret=STRIPE_SECRET)
    about_nothing = stripe_event("checkout.session.expired", {"id": "cs_test_none", "object": "checkout.session"})
    assert post_stripe(client, other_organization.public_id, about_nothing).status_code == 200  # now kept
    public_id = other_organization.public_id
    other_organization.delete()
    assert post_stripe(client, public_id, about_nothing).status_code == 404


def test_an_unknown_organization_is_never_kept(client, db):
    assert post_stripe(client, "org_nobody", stripe_event("checkout.session.completed", {})).status_code == 404
    assert ("stripe", "org_nobody") not in registry._routes
