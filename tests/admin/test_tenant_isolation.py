"""Organizers see only their own organization's objects in the admin."""

import pytest
from django.contrib.auth import get_user_model

from checkout import services
from ievents.models import ApiKey
from tests.conftest import make_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_tenants(organization, other_organization):
    mine = make_event(organization, name="Mine")
    theirs = make_event(other_organization, name="Theirs")
    mine_session = services.create_session(mine, [services.Item(mine.ticket_types.get(), 1)])
    their_session = services.create_session(theirs, [services.Item(theirs.ticket_types.get(), 1)])
    return mine, theirs, mine_session, their_session


def test_an_organizer_lists_only_their_own_events_and_sessions(client, organizer, two_tenants):
    mine, theirs, mine_session, their_session = two_tenants
    client.force_login(organizer)
    events = client.get("/admin/ievents/event/").content.decode()
    assert "Mine" in events and "Theirs" not in events
    sessions = client.get("/admin/checkout/checkoutsession/").content.decode()
    assert mine_session.public_id in sessions and their_session.public_id not in sessions


def test_an_organizer_cannot_open_another_organizations_objects(client, organizer, two_tenants):
    mine, theirs, mine_session, their_session = two_tenants
    client.force_login(organizer)
    assert client.get(f"/admin/ievents/event/{mine.pk}/change/").status_code == 200
    # Django's admin redirects to the index with a message for objects outside the queryset.
    for url in (f"/admin/ievents/event/{theirs.pk}/change/",
                f"/admin/checkout/checkoutsession/{their_session.pk}/change/",
                f"/admin/ievents/organization/{theirs.organization.pk}/change/"):
        response = client.get(url)
        assert response.status_code in (302, 404)
        assert "Theirs" not in client.get(url, follow=True).content.decode()


def test_an_organizer_cannot_create_an_event_for_another_organization(client, organizer, other_organization):
    client.force_login(organizer)
    response = client.post("/admin/ievents/event/add/", {
        "organization": other_organization.pk, "name_en": "Sneaky", "starts_at_0": "2030-01-01", "starts_at_1": "10:00",
        "currency": "EUR", "timezone": "Europe/Lisbon", "published": "on",
        "ticket_types-TOTAL_FORMS": 0, "ticket_types-INITIAL_FORMS": 0,
        "questions-TOTAL_FORMS": 0, "questions-INITIAL_FORMS": 0,
    })
    assert response.status_code == 200  # the form comes back with an error
    assert not other_organization.events.filter(name="Sneaky").exists()


def test_the_transition_history_is_shown_read_only(client, organizer, two_tenants):
    _, _, mine_session, _ = two_tenants
    services.expire_session(mine_session.pk)
    client.force_login(organizer)
    page = client.get(f"/admin/checkout/checkoutsession/{mine_session.pk}/change/").content.decode()
    assert "<h2>History</h2>" in page and "<strong>Expired</strong> <span class=\"who\">" in page
    assert 'name="status"' not in page


def test_a_superuser_sees_every_organization(client, two_tenants):
    admin = get_user_model().objects.create_superuser("root", password="pw-root-12345")
    client.force_login(admin)
    events = client.get("/admin/ievents/event/").content.decode()
    assert "Mine" in events and "Theirs" in events


def test_an_api_key_created_in_admin_is_shown_once_and_stored_hashed(client, organizer, organization):
    client.force_login(organizer)
    response = client.post("/admin/ievents/apikey/add/", {"organization": organization.pk, "name": "shop",
                                                          "role": "viewer"})
    assert response.status_code == 200
    row = ApiKey.objects.get(name="shop")
    (label, key), = response.context["secrets"]  # in a box with a copy button, not a message
    assert "API key" in label and f'value="{key}"' in response.content.decode()
    assert ApiKey.hash(key) == row.key_hash and key not in row.key_hash and row.role == "viewer"
    assert key not in client.get(f"/admin/ievents/apikey/{row.pk}/change/").content.decode()


def test_the_organization_signing_secret_is_masked_and_rotation_shows_the_new_one_once(client, organizer, organization):
    old = organization.signing_secret
    client.force_login(organizer)
    page = client.get(f"/admin/ievents/organization/{organization.pk}/change/").content.decode()
    assert old not in page and old[-4:] in page
    response = client.post("/admin/ievents/organization/", {"action": "rotate_signing_secret",
                                                             "_selected_action": [organization.pk]}, follow=True)
    organization.refresh_from_db()
    assert organization.signing_secret != old
    assert organization.signing_secret in response.content.decode()
    later = client.get(f"/admin/ievents/organization/{organization.pk}/change/").content.decode()
    assert organization.signing_secret not in later


def test_an_organizer_cannot_delete_their_organization(client, organizer, organization):
    client.force_login(organizer)
    response = client.post(f"/admin/ievents/organization/{organization.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert type(organization).objects.filter(pk=organization.pk).exists()
