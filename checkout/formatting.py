"""Money, dates and references as the attendee reads them, in the active language.

One helper for each, used by the pages (through ``checkout_format``'s filters), the ticket
email and the calendar file, so a price or a time reads the same everywhere.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.utils import translation
from django.utils.dates import MONTHS
from django.utils.translation import gettext

# Currencies whose symbol people recognise; any other is written with its ISO code.
SYMBOLS = {"EUR": "€", "USD": "US$", "GBP": "£", "BRL": "R$", "CHF": "CHF"}


def _is_portuguese(language: str | None = None) -> bool:
    return (language or translation.get_language() or "en").lower().startswith("pt")


def _grouped(units: int, separator: str) -> str:
    return f"{units:,}".replace(",", separator)


def money(amount: int | None, currency: str, language: str | None = None, *, zero_is_free: bool = True) -> str:
    """Minor units as people write the price: 1850 EUR → ``€18.50`` in English, ``18,50 €`` in
    Portuguese (a space groups thousands there: ``1 250,00 €``); zero is "Free" for a price."""
    if not amount and zero_is_free:
        return gettext("Free")
    units, cents = divmod(int(amount or 0), 100)
    symbol = SYMBOLS.get(currency, currency)
    if _is_portuguese(language):
        return f"{_grouped(units, ' ')},{cents:02d} {symbol}"
    separator = "" if len(symbol) == 1 else " "
    return f"{symbol}{separator}{_grouped(units, ',')}.{cents:02d}"


def in_zone(value: datetime, zone_name: str) -> datetime:
    return value.astimezone(zoneinfo.ZoneInfo(zone_name))


def time_in_zone(value: datetime, zone_name: str) -> str:
    """``20:00 WET``: the clock time in the event's zone with the zone's abbreviation."""
    local = in_zone(value, zone_name)
    return f"{local:%H:%M} {local.tzname()}"


def datetime_in_zone(value: datetime, zone_name: str, language: str | None = None) -> str:
    """``3 de janeiro de 2027, 20:00 WET`` / ``3 January 2027, 20:00 WET``."""
    local = in_zone(value, zone_name)
    month = str(MONTHS[local.month])
    if _is_portuguese(language):
        # European Portuguese writes month names in lower case.
        return f"{local.day} de {month.lower()} de {local.year}, {time_in_zone(value, zone_name)}"
    return f"{local.day} {month} {local.year}, {time_in_zone(value, zone_name)}"


def order_reference(public_id: str) -> str:
    """A short reference an attendee can read aloud on the phone: the session id's last six
    characters in capitals, in two groups (``cs_…Ab3xQz`` → ``AB3-XQZ``). Shown beside the full
    id, which stays the one that identifies the order."""
    tail = public_id[-6:].upper()
    return f"{tail[:3]}-{tail[3:]}"
