"""Money for the whole app: how many decimals a currency has, how each language writes an
amount, and how to read one typed into a form.

Amounts are stored and spoken by the API as integer minor units (1850 = €18.50; ¥1000 has
no minor unit). What a currency is — its minor-unit exponent (JPY 0, EUR 2, BHD 3), its
symbol in each language, where the symbol goes — comes from Babel (CLDR), not a table of
our own. Every page, email, CSV, form and admin screen writes money with ``format_money``
and reads it with ``parse_amount`` (``MoneyField`` in forms).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import format_currency, get_currency_precision, get_currency_symbol
from django import forms
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy, ngettext

# Far above any ticket, far below the integer column's limit.
MAX_UNITS = Decimal(10) ** 9
# CLDR separates an alphabetic symbol (a currency code) from the digits with a no-break
# space ("SEK 10.00"); Babel does not, so that one rule is applied here.
_CODE_BEFORE_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)")
_DIGIT_BEFORE_CODE = re.compile(r"(?<=\d)(?=[A-Za-z])")


@lru_cache(maxsize=16)
def _locale(language: str) -> Locale:
    return Locale.parse(translation.to_locale(language))


def _language(language: str | None) -> str:
    return language or translation.get_language() or "en"


def exponent(currency: str) -> int:
    """Digits after the decimal point: 2 for EUR, 0 for JPY, 3 for BHD (ISO 4217, via CLDR)."""
    return get_currency_precision((currency or "").upper())


def symbol(currency: str, language: str | None = None) -> str:
    """``€``; ``$`` in English and ``US$`` in Portuguese; the code when CLDR has no symbol."""
    return get_currency_symbol((currency or "").upper(), _locale(_language(language)))


def to_units(minor: int, currency: str) -> Decimal:
    """1850, "EUR" → Decimal("18.50"); 1000, "JPY" → Decimal("1000")."""
    places = exponent(currency)
    return (Decimal(int(minor)) / (Decimal(10) ** places)).quantize(Decimal(1).scaleb(-places))


def to_minor(units: Decimal, currency: str) -> int:
    """Decimal("18.5"), "EUR" → 1850. More decimals than the currency has is a ``ValueError``."""
    places = exponent(currency)
    minor = units.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(ngettext("%(currency)s amounts have at most %(places)d decimal place.",
                                  "%(currency)s amounts have at most %(places)d decimal places.", places)
                         % {"currency": currency, "places": places})
    return int(minor)


def format_money(minor: int | None, currency: str, language: str | None = None, *,
                 zero_is_free: bool = False) -> str:
    """Minor units as the language writes them: 1850 EUR → ``€18.50`` / ``18,50 €``,
    1000 JPY → ``¥1,000``; ``None`` → "—"; with ``zero_is_free`` a zero price is "Free".

    Spaces are plain spaces (``1 250,00 €``): the public contract writes them so, and a page
    or a CSV compared by its text should not depend on which space CLDR chose.
    """
    if minor is None:
        return "—"
    if zero_is_free and not minor:
        return gettext("Free")
    code = (currency or "").upper()
    text = format_currency(to_units(minor, code), code, locale=_locale(_language(language)))
    text = _DIGIT_BEFORE_CODE.sub(" ", _CODE_BEFORE_DIGIT.sub(" ", text))
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def parse_amount(text: str, currency: str, language: str | None = None) -> Decimal:
    """An amount typed as people write it, in currency units: ``18``, ``18.50``, ``18,50``,
    ``€18.50``, ``1,250.00``, ``1 250,00 €``. ``ValueError`` for anything else. Whether it
    has more decimals than the currency allows is ``to_minor``'s question.

    One separator written once is the decimal point when it is the language's own (``12,50``
    in Portuguese) or when it is not followed by exactly three digits (``18.50`` typed in
    Portuguese is still 18.50); ``1,000`` in English is a thousand.
    """
    value = str(text).strip()
    for sign in {symbol(currency, language), symbol(currency, "en"), (currency or "").upper(), "€", "$"}:
        value = value.replace(sign, "")
    value = re.sub(r"[\s\u00a0\u202f]", "", value)
    if not re.fullmatch(r"[0-9.,]+", value) or not re.search(r"\d", value):
        raise ValueError(text)
    decimal_sign = _locale(_language(language)).number_symbols["latn"]["decimal"]
    commas, dots = value.count(","), value.count(".")
    if commas and dots:
        point = "," if value.rfind(",") > value.rfind(".") else "."
    elif commas + dots == 1:
        sign = "," if commas else "."
        after = len(value) - value.index(sign) - 1
        point = sign if sign == decimal_sign or after != 3 or exponent(currency) == 3 else None
    else:
        point = None  # only thousands separators (1.000.000), or none
    whole = value.split(point)[0] if point else value
    groups = re.split(r"[.,]", whole)
    if len(groups) > 1 and not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
        raise ValueError(text)  # "18.5.0" is no number anyone writes
    for sign in {",", "."} - {point}:
        value = value.replace(sign, "")
    if point is not None:
        if value.count(point) != 1:
            raise ValueError(text)
        value = value.replace(point, ".")
    try:
        units = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(text) from exc
    return units


class MoneyField(forms.Field):
    """An amount in currency units, typed as people do (see ``parse_amount``). Cleans to a
    ``Decimal`` of units; the currency is ``currency`` or, in a ``MoneyFormMixin`` form, the
    form's. A price typed as ``18`` means 18.00."""

    default_error_messages = {"invalid": gettext_lazy("Enter an amount such as 18 or 18.50.")}

    widget = forms.TextInput

    def __init__(self, *, currency: str = "EUR", min_value=Decimal(0), max_value=MAX_UNITS, **kwargs):
        super().__init__(**kwargs)
        self.currency, self.min_value, self.max_value = currency, min_value, max_value
        self.widget.attrs.update({"inputmode": "decimal"})

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, Decimal | int):
            return Decimal(value)
        if len(str(value)) > 40:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            units = parse_amount(value, self.currency)
        except ValueError as exc:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc
        if self.min_value is not None and units < self.min_value:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if self.max_value is not None and units > self.max_value:
            raise forms.ValidationError(gettext("That amount is too large."), code="max_value")
        return units

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return format_units(value, self.currency)
        return value


def format_units(units: Decimal, currency: str, language: str | None = None) -> str:
    """A Decimal of units as a form shows it for editing, without symbol or grouping:
    ``18,50`` in Portuguese, ``18.50`` in English, ``1000`` for yen."""
    text = f"{units.quantize(Decimal(1).scaleb(-exponent(currency))):f}"
    decimal_sign = _locale(_language(language)).number_symbols["latn"]["decimal"]
    return text.replace(".", decimal_sign)


class MoneyFormMixin:
    """For a ModelForm whose ``money_fields`` are integer minor units on the model: shows them
    in units and stores what is typed in minor units of ``form_currency()``."""

    money_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        currency = self.form_currency()
        for name in self.money_fields:
            field = self.fields[name]
            field.currency = currency
            stored = getattr(self.instance, name, None)
            if self.instance.pk and stored is not None:
                self.initial[name] = to_units(stored, currency)
            field.help_text = field.help_text or gettext("In %(currency)s: 18 means %(example)s.") % {
                "currency": symbol(currency), "example": format_money(1800 * 10 ** exponent(currency) // 100,
                                                                      currency)}

    def form_currency(self) -> str:
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        currency = self.form_currency()
        for name in self.money_fields:
            if cleaned.get(name) is not None:
                try:
                    cleaned[name] = to_minor(cleaned[name], currency)
                except ValueError as exc:
                    self.add_error(name, str(exc))
        return cleaned
