"""Each event has an IANA time zone: Europe/Lisbon unless the organizer says otherwise."""

import pytest
from django.core.exceptions import ValidationError

from ievents.models import Event

pytestmark = pytest.mark.django_db

EVENT = {"name": "Jazz night", "currency": "EUR", "starts_at": "2027-03-01T20:00:00Z",
         "ticket_types": [{"name": "Standing", "price": 1800, "quantity": 50}]}


def test_an_event_is_in_lisbon_unless_told_otherwise(api):
    created = api.post("/v1/events", EVENT, format="json").json()
    assert created["timezone"] == "Europe/Lisbon"
    changed = api.patch(f"/v1/events/{created['id']}", {"timezone": "Atlantic/Madeira"}, format="json")
    assert changed.status_code == 200 and changed.json()["timezone"] == "Atlantic/Madeira"
    assert Event.objects.get(public_id=created["id"]).timezone == "Atlantic/Madeira"


@pytest.mark.parametrize("zone", ["Lisbon", "Europe/Atlantis", "europe/lisbon", "", "../../etc/passwd", "x" * 65,
                                  "localtime", "Factory"])
def test_a_time_zone_that_does_not_exist_is_a_field_error(api, zone):
    response = api.post("/v1/events", {**EVENT, "timezone": zone}, format="json")
    assert response.status_code == 400 and "timezone" in response.json()["error"]["fields"]
    assert not Event.objects.exists()


def test_the_model_refuses_an_unknown_zone_too(organization):
    from datetime import UTC, datetime

    event = Event(organization=organization, name="x", starts_at=datetime(2027, 1, 1, tzinfo=UTC), timezone="Mars/Base")
    with pytest.raises(ValidationError) as error:
        event.full_clean()
    assert "timezone" in error.value.message_dict


def test_the_admin_sets_the_time_zone(client, organizer, event):
    from tests.conftest import event_change_form

    client.force_login(organizer)
    form = {**event_change_form(event), "timezone": "America/Sao_Paulo"}
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", form)
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.timezone == "America/Sao_Paulo"
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", {**form, "timezone": "Nowhere/Else"})
    assert response.status_code == 200 and "Choose a time zone such as Europe/Lisbon." in response.content.decode()
