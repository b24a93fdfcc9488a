"""Money, dates and references as the attendee reads them, in the active language.

One helper for each, used by the pages (through ``checkout_format``'s filters), the ticket
email and the calendar file, so a price or a time reads the same everywhere.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.utils import translation
from django.utils.dates import MONTHS


def _is_portuguese(language: str | None = None) -> bool:
    return (language or translation.get_language() or "en").lower().startswith("pt")


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
