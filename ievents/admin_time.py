"""Times in the back office, in the zone they belong to, with the zone written beside them.

Django's admin types and shows every time in the *current* time zone (``TIME_ZONE`` is UTC).
An event's times belong to the event's zone (``Event.timezone``) and an order's to its
organization's (``Organization.timezone``), so the pages that show them run with that zone
activated (``in_zone``) — the form reads "20:00" typed for a Lisbon event in July as 19:00 UTC
and shows it back as 20:00 — and every value says which zone it is in (``ZonedSplitDateTime``,
``local_text``).
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime

from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils import formats, timezone

from .models import NOT_PLACES

DEFAULT_ZONE = "Europe/Lisbon"


# The zones this machine knows: read from disk once (``available_timezones`` walks tzdata).
_zones = functools.cache(zoneinfo.available_timezones)


def known_zone(name: str | None) -> str | None:
    """``name`` if it is an IANA zone this machine knows, else None."""
    return name if name and name in _zones() and name not in NOT_PLACES else None


def local_text(value: datetime | None, zone_name: str) -> str:
    """``10 Jul 2027 20:00 WEST``: the moment on the zone's clock, with the zone's abbreviation."""
    if value is None:
        return "—"
    local = timezone.localtime(value, zoneinfo.ZoneInfo(zone_name))
    return f"{formats.date_format(local, 'j M Y H:i')} {local.tzname()}"


def organization_zone(request) -> str | None:
    """The zone of the user's organizations when they share one (most users have one
    organization), else None: the back office's pages are on that clock."""
    from .admin_base import request_roles
    from .models import Organization

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.is_superuser or not request_roles(request):
        return None
    zones = set(Organization.objects.filter(pk__in=list(request_roles(request))).values_list("timezone", flat=True))
    return known_zone(zones.pop()) if len(zones) == 1 else None


def in_zone(zone_name: str, view, *args, **kwargs):
    """Run an admin view with ``zone_name`` active, rendering its response inside the zone
    (a TemplateResponse renders after the view returns, when the zone would be gone)."""
    with timezone.override(zoneinfo.ZoneInfo(zone_name)):
        response = view(*args, **kwargs)
        if hasattr(response, "render") and not response.is_rendered:
            response.render()
    return response


class ZonedSplitDateTime(AdminSplitDateTime):
    """The admin's date and time inputs with the active zone written after them
    ("Europe/Lisbon, WEST"), so nobody has to guess which clock a time is on."""

    template_name = "admin/widgets/zoned_split_datetime.html"

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        zone = timezone.get_current_timezone()
        # The abbreviation of the value's own date (WEST in July, WET in January); none for an
        # empty input, whose date is not known yet.
        abbreviation = ""
        if isinstance(value, datetime):
            moment = timezone.make_aware(value, zone) if timezone.is_naive(value) else value
            abbreviation = moment.astimezone(zone).tzname()
        context["widget"]["zone"] = str(zone)
        context["widget"]["zone_abbreviation"] = abbreviation if abbreviation != str(zone) else ""
        return context
