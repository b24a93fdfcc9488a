"""Shared fixtures: services policy, a tenant with an event, an API client.

Tests marked ``postgres`` or ``broker`` need the real services. Without them they are
skipped with a reason; with ``REQUIRE_SERVICES=1`` (CI) a missing service is a failure.
"""

import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _using_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _using_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def pytest_runtest_setup(item):
    missing = []
    if item.get_closest_marker("postgres") and not _using_postgres():
        missing.append("PostgreSQL (set DATABASE_URL=postgres://…)")
    if item.get_closest_marker("broker") and not _using_redis():
        missing.append("Redis (set CELERY_BROKER_URL=redis://…)")
    if missing:
        message = "needs " + " and ".join(missing)
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but this test {message}")
        pytest.skip(message)


@pytest.fixture
def organization(db):
    from ievents.models import Organization

    return Organization.objects.create(name="Acme Events", slug="acme", notification_email="ops@acme.test")


@pytest.fixture
def other_organization(db):
    from ievents.models import Organization

    return Organization.objects.create(name="Rival Events", slug="rival")


def event_change_form(event) -> dict:
    """The admin's event change form as a browser posts it, no inline rows (gate inline: none)."""
    return {
        "organization": event.organization_id, "name": event.name, "description": "", "venue": "",
        "starts_at_0": event.starts_at.strftime("%Y-%m-%d"), "starts_at_1": event.starts_at.strftime("%H:%M:%S"),
        "currency": event.currency, "timezone": event.timezone, "published": "on",
        "ticket_types-TOTAL_FORMS": 0, "ticket_types-INITIAL_FORMS": 0,
        "questions-TOTAL_FORMS": 0, "questions-INITIAL_FORMS": 0,
        "gate-TOTAL_FORMS": 0, "gate-INITIAL_FORMS": 0, "gate-MIN_NUM_FORMS": 0, "gate-MAX_NUM_FORMS": 1,
    }


def make_event(organization, *, price=2500, quantity=100, name="Summit", questions=True, providers=("sandbox",)):
    from ievents.models import Event, Question, TicketType
    from payments.models import IntegrationSettings

    event = Event.objects.create(
        organization=organization, name=name, starts_at=timezone.now() + timedelta(days=10), currency="EUR"
    )
    TicketType.objects.create(event=event, name="General", price=price, quantity=quantity, max_per_order=10)
    if questions:
        Question.objects.create(event=event, text="Company", kind="text", position=0)
        Question.objects.create(event=event, text="T-shirt size", kind="choice", choices="S\nM\nL", required=True,
                                position=1)
    for provider in providers:
        IntegrationSettings.objects.get_or_create(organization=organization, provider=provider)
    return event


ORGANIZER_PASSWORD = "pw-organizer-7f3a9c"


def make_organizer(organization, username="ana", password=ORGANIZER_PASSWORD):
    """A staff user in the Organizers group, member of ``organization`` only."""
    from django.contrib.auth import get_user_model

    from ievents.management.commands.seed_demo import organizer_group
    from ievents.models import Membership

    user = get_user_model().objects.create_user(username, password=password, is_staff=True)
    user.groups.add(organizer_group())
    Membership.objects.create(user=user, organization=organization)
    return user


@pytest.fixture
def organizer(organization):
    """Ana, an organizer of ``organization`` (not logged in)."""
    return make_organizer(organization)


@pytest.fixture
def event(organization):
    return make_event(organization)


@pytest.fixture
def ticket_type(event):
    return event.ticket_types.get()


@pytest.fixture
def api_key(organization):
    from ievents.models import ApiKey

    return ApiKey.issue(organization)[1]


@pytest.fixture
def api(api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def open_session(event, ticket_type):
    from checkout import services

    return services.create_session(event, [services.Item(ticket_type, 2)])
