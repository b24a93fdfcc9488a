"""Kept so that code written against the old name still imports: money lives in
``ievents.money`` (one module for the whole app). Import from there."""

from .money import MAX_UNITS, MoneyField, MoneyFormMixin, exponent, format_money, to_minor, to_units  # noqa: F401
