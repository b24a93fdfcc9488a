from django import template

register = template.Library()


@register.filter
def money(amount, currency):
    """Minor units to a readable price: 1500, "EUR" → "15.00 EUR"; 0 → "Free"."""
    if not amount:
        return "Free"
    return f"{int(amount) / 100:.2f} {currency}"
