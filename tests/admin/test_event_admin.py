"""The event's change form: payment providers are tick boxes, not a JSON list to type."""

import pytest

from tests.conftest import event_change_form, make_event

pytestmark = pytest.mark.django_db


def event_form(event, providers):
    data = event_change_form(event)
    if providers:
        data["payment_providers"] = providers
    return data


@pytest.fixture
def event(organization, client, organizer):
    client.force_login(organizer)
    return make_event(organization, questions=False)


def test_the_organizer_ticks_the_providers_offered_for_the_event(client, event):
    page = client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()
    for provider in ("sandbox", "stripe", "easypay", "ifthenpay"):
        assert f'type="checkbox" name="payment_providers" value="{provider}"' in page

    response = client.post(f"/admin/ievents/event/{event.pk}/change/", event_form(event, ["stripe", "easypay"]))
    assert response.status_code == 302, response.content.decode()[:2000]
    event.refresh_from_db()
    assert event.payment_providers == ["stripe", "easypay"]
    page = client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()
    assert 'value="stripe" id="id_payment_providers_1" checked' in page


def test_none_ticked_means_every_enabled_provider(client, event):
    event.payment_providers = ["stripe"]
    event.save(update_fields=["payment_providers"])
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", event_form(event, []))
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.payment_providers == []


def test_an_unknown_provider_is_refused_and_nothing_changes(client, event):
    event.payment_providers = ["sandbox"]
    event.save(update_fields=["payment_providers"])
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", event_form(event, ["paypal"]))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    event.refresh_from_db()
    assert event.payment_providers == ["sandbox"]
