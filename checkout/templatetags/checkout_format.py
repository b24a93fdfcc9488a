from django import template

register = template.Library()


@register.filter
def money(amount, currency):
    """Minor units to a readable price: 1500, "EUR" → "15.00 EUR"; 0 → "Free"."""
    if not amount:
        return "Free"
    return f"{int(amount) / 100:.2f} {currency}"


@register.filter
def all_sold_out(ticket_types) -> bool:
    """True when there are ticket types on sale and none has a ticket left."""
    ticket_types = list(ticket_types)
    return bool(ticket_types) and all(tt.available <= 0 for tt in ticket_types)
