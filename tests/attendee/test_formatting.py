"""Money, dates and order references as the attendee reads them."""

from datetime import UTC, datetime

import pytest
from django.utils import translation

from checkout.formatting import datetime_in_zone, order_reference, time_in_zone
from ievents.money import format_money as money


@pytest.mark.parametrize(("language", "amount", "currency", "expected"), [
    ("en", 1850, "EUR", "€18.50"),
    ("pt-pt", 1850, "EUR", "18,50 €"),
    ("en", 125000, "EUR", "€1,250.00"),
    ("pt-pt", 125000, "EUR", "1 250,00 €"),
    ("en", 5, "EUR", "€0.05"),
    ("en", 1000, "USD", "$10.00"),
    ("en", 100000, "JPY", "¥100,000"),
    ("pt-pt", 1234, "BHD", "1,234 BHD"),
    ("pt-pt", 1000, "USD", "10,00 US$"),
    ("en", 1000, "SEK", "SEK 10.00"),
])
def test_money_is_written_as_people_of_the_language_write_it(language, amount, currency, expected):
    with translation.override(language):
        assert money(amount, currency) == expected


def test_a_zero_price_is_free_in_each_language_but_a_running_total_is_an_amount():
    with translation.override("en"):
        assert money(0, "EUR", zero_is_free=True) == "Free" and money(0, "EUR") == "€0.00"
    with translation.override("pt-pt"):
        assert money(0, "EUR", zero_is_free=True) == "Grátis" and money(0, "EUR") == "0,00 €"


def test_dates_are_in_the_events_zone_with_its_abbreviation_in_each_language():
    winter = datetime(2027, 1, 3, 20, 0, tzinfo=UTC)
    summer = datetime(2027, 7, 3, 19, 0, tzinfo=UTC)
    with translation.override("pt-pt"):
        assert datetime_in_zone(winter, "Europe/Lisbon") == "3 de janeiro de 2027, 20:00 WET"
        assert datetime_in_zone(summer, "Europe/Lisbon") == "3 de julho de 2027, 20:00 WEST"
    with translation.override("en"):
        assert datetime_in_zone(winter, "Europe/Lisbon") == "3 January 2027, 20:00 WET"
        assert datetime_in_zone(winter, "America/New_York") == "3 January 2027, 15:00 EST"
        assert datetime_in_zone(winter, "Asia/Kolkata") == "4 January 2027, 01:30 IST"  # the next day there
    assert time_in_zone(summer, "Atlantic/Azores") == "19:00 +00"


def test_the_order_reference_is_short_readable_and_derived_from_the_id():
    assert order_reference("cs_3kTq9aZxyAb3xQz") == "AB3-XQZ"
    assert order_reference("cs_3kTq9aZxyAb3xQz") == order_reference("cs_3kTq9aZxyAb3xQz")
