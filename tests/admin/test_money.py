"""Money in the admin as people write it: 18 is €18.00, never €0.18."""

from decimal import Decimal

import pytest

from ievents.money import MoneyField, format_money, to_minor, to_units
from tests.conftest import event_change_form

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("minor", "currency", "shown"), [
    (1850, "EUR", "€18.50"), (12500, "EUR", "€125.00"), (0, "EUR", "€0.00"), (1500, "JPY", "¥1,500"),
    (123456, "EUR", "€1,234.56"), (1234, "KWD", "KWD 1.234"), (999, "AOA", "AOA 9.99"), (None, "EUR", "—"),
])
def test_amounts_are_shown_in_currency_units_with_their_symbol(minor, currency, shown):
    assert format_money(minor, currency) == shown


@pytest.mark.parametrize(("typed", "units"), [
    ("18", "18"), ("18.5", "18.5"), ("18.50", "18.50"), ("€18.50", "18.50"), ("18,50", "18.50"), (" 1,250.00 ", "1250.00"),
])
def test_a_price_is_typed_as_people_write_it(typed, units):
    assert MoneyField().clean(typed) == Decimal(units)


@pytest.mark.parametrize("typed", ["abc", "-1", "18.5.0", "1e400", "€", "99999999999"])
def test_nonsense_is_a_form_error_not_a_crash(typed):
    from django import forms

    with pytest.raises(forms.ValidationError):
        MoneyField().clean(typed)


def test_minor_units_follow_the_currencys_exponent():
    assert to_minor(Decimal("18"), "EUR") == 1800
    assert to_minor(Decimal("18.5"), "EUR") == 1850
    assert to_minor(Decimal("1500"), "JPY") == 1500
    assert to_minor(Decimal("1.234"), "KWD") == 1234
    assert to_units(1850, "EUR") == Decimal("18.50")
    with pytest.raises(ValueError, match="at most 2 decimal places"):
        to_minor(Decimal("18.505"), "EUR")
    with pytest.raises(ValueError, match="at most 0 decimal places"):
        to_minor(Decimal("15.5"), "JPY")


def ticket_type_form(event, price, currency="EUR", **more):
    data = {**event_change_form(event), "currency": currency, "ticket_types-TOTAL_FORMS": 1,
            "ticket_types-0-name_en": "Standing", "ticket_types-0-price": price, "ticket_types-0-quantity": 50,
            "ticket_types-0-max_per_order": 10, "ticket_types-0-position": 0, "ticket_types-0-event": event.pk}
    data.update(more)
    return data


@pytest.fixture
def event(event, client, organizer):
    client.force_login(organizer)
    event.ticket_types.all().delete()
    return event


@pytest.mark.parametrize(("typed", "stored"), [("18", 1800), ("18.50", 1850), ("€18,50", 1850), ("0", 0)])
def test_a_ticket_price_typed_in_euros_is_stored_in_cents(client, event, typed, stored):
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", ticket_type_form(event, typed))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert event.ticket_types.get().price == stored


def test_a_price_in_yen_has_no_cents(client, event):
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", ticket_type_form(event, "1500", "JPY"))
    assert response.status_code == 302
    assert event.ticket_types.get().price == 1500
    response = client.post(f"/admin/ievents/event/{event.pk}/change/",
                           ticket_type_form(event, "15.50", "JPY", **{"ticket_types-INITIAL_FORMS": 1,
                                                                       "ticket_types-0-id": event.ticket_types.get().pk}))
    assert response.status_code == 200 and "at most 0 decimal places" in response.content.decode()


@pytest.mark.parametrize("typed", ["18.505", "abc", "-5", ""])
def test_a_bad_price_is_a_form_error_and_nothing_is_saved(client, event, typed):
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", ticket_type_form(event, typed))
    assert response.status_code == 200
    assert not event.ticket_types.exists()


def test_a_stored_price_is_shown_back_in_euros(client, event):
    event.ticket_types.create(name="VIP", price=12500, quantity=5)
    html = client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()
    assert 'value="125.00"' in html and 'value="12500"' not in html


def test_the_quantity_cannot_go_below_what_is_sold_or_held(client, event):
    tt = event.ticket_types.create(name="Standing", price=1800, quantity=50, reserved=30)
    data = ticket_type_form(event, "18", **{"ticket_types-INITIAL_FORMS": 1, "ticket_types-0-id": tt.pk,
                                            "ticket_types-0-quantity": 20})
    response = client.post(f"/admin/ievents/event/{event.pk}/change/", data)
    assert response.status_code == 200 and "30 tickets are held or sold" in response.content.decode()
    tt.refresh_from_db()
    assert tt.quantity == 50
