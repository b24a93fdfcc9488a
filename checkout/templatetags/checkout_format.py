from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from checkout import emails, formatting, tickets
from ievents.money import format_money, symbol

register = template.Library()


@register.filter
def money(amount, currency):
    """Minor units to a price in the active language: ``€18.50`` / ``18,50 €``; 0 → "Free"."""
    return format_money(amount, currency, zero_is_free=True)


@register.filter
def event_datetime(value, event):
    """A moment (or an ISO 8601 string) in the event's time zone, with its abbreviation:
    ``3 January 2027, 20:00 WET``."""
    if isinstance(value, str):
        try:
            value = parse_datetime(value)
        except ValueError:
            return ""
    if value is None or timezone.is_naive(value):
        return ""
    return formatting.datetime_in_zone(value, event.timezone)


@register.filter
def event_time(value, event):
    """The clock time in the event's zone: ``20:00 WET``."""
    return formatting.time_in_zone(value, event.timezone) if value else ""


@register.filter
def order_reference(session):
    return formatting.order_reference(session.public_id)


@register.filter
def qr_svg(code, label=""):
    return tickets.qr_svg(code, label)


@register.filter
def all_sold_out(ticket_types) -> bool:
    """True when there are ticket types on sale and none has a ticket left."""
    ticket_types = list(ticket_types)
    return bool(ticket_types) and all(tt.available <= 0 for tt in ticket_types)


@register.filter
def bcp47(language_code: str) -> str:
    """Django's language code as HTML's ``lang`` wants it: ``pt-pt`` → ``pt-PT``."""
    language, _, region = language_code.partition("-")
    return f"{language}-{region.upper()}" if len(region) == 2 else language_code


@register.filter
def floordiv(value, divisor):
    return int(value) // int(divisor)


@register.filter
def currency_symbol(currency):
    return symbol(currency)


@register.filter
def money_or_zero(amount, currency):
    """A running total: zero is written as an amount (``€0.00``), not as "Free"."""
    return format_money(amount, currency)


@register.filter
def invoice_lines(session):
    """The order's invoice details, one per line: tax number, name, address."""
    return emails.invoice_lines(session)
