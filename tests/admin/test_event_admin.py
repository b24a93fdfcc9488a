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


def ticket_type_rows(event, **changes) -> dict:
    """The event's form with its one ticket type as an inline row, ``changes`` applied."""
    tt = event.ticket_types.get()
    row = {"id": tt.pk, "event": event.pk, "name_en": tt.name, "price": "25.00", "quantity": tt.quantity,
           "max_per_order": tt.max_per_order, "sales_start_0": "", "sales_start_1": "", "sales_end_0": "",
           "sales_end_1": "", "position": tt.position} | changes
    data = event_change_form(event) | {"ticket_types-TOTAL_FORMS": 1, "ticket_types-INITIAL_FORMS": 1}
    return data | {f"ticket_types-0-{name}": value for name, value in row.items()}


def test_lowering_a_quantity_below_what_is_held_is_a_form_error_not_a_500(client, event):
    """Finding 6 of issue 13: the ``no_oversell`` constraint answered an IntegrityError (500)."""
    from checkout import services

    tt = event.ticket_types.get()
    services.create_session(event, [services.Item(tt, 5)])
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", ticket_type_rows(event, quantity=3))
    assert response.status_code == 200
    assert "5 tickets are held or sold: the quantity cannot be lower." in response.content.decode()
    tt.refresh_from_db()
    assert tt.quantity == 100 and tt.reserved == 5
    # Down to exactly what is held is allowed.
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", ticket_type_rows(event, quantity=5))
    assert response.status_code == 302, response.content.decode()[-3000:]
    tt.refresh_from_db()
    assert tt.quantity == 5
