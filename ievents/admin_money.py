"""Money in the admin as people write it: typed and shown in currency units (``18.50``,
``€125.00``), stored as integer minor units (what the API speaks).

One place for both directions: ``format_money`` shows an amount, ``MoneyField`` with
``MoneyFormMixin`` reads one typed into a form. A price typed as ``18`` means €18.00.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms

# ISO 4217 minor-unit exponents that are not 2 (the rest, EUR among them, have 2).
EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
    "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "BRL": "R$", "CAD": "CA$", "AUD": "A$"}
# Far above any ticket, far below the integer column's limit.
MAX_UNITS = Decimal(10) ** 9


def exponent(currency: str) -> int:
    return EXPONENTS.get((currency or "").upper(), 2)


def to_units(minor: int, currency: str) -> Decimal:
    """1850, "EUR" → Decimal("18.50")."""
    places = exponent(currency)
    return (Decimal(int(minor)) / (Decimal(10) ** places)).quantize(Decimal(1).scaleb(-places))


def to_minor(units: Decimal, currency: str) -> int:
    """Decimal("18.5"), "EUR" → 1850. More decimals than the currency has is an error."""
    places = exponent(currency)
    minor = units.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency} amounts have at most {places} decimal place{'s' if places != 1 else ''}.")
    return int(minor)


def format_money(minor: int | None, currency: str) -> str:
    """1850, "EUR" → "€18.50"; a currency without a symbol: "18.50 AOA"; none: "—"."""
    if minor is None:
        return "—"
    units = to_units(minor, currency)
    text = f"{units:,}"
    symbol = SYMBOLS.get((currency or "").upper())
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


class MoneyField(forms.DecimalField):
    """An amount in currency units, typed as people do: ``18``, ``18.50``, ``€18.50``, ``18,50``.

    Cleans to a ``Decimal`` of units; ``MoneyFormMixin`` turns it into minor units once the
    currency is known.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_value", MAX_UNITS)
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "step": "any"})

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip()
            for symbol in sorted(SYMBOLS.values(), key=len, reverse=True):
                value = value.replace(symbol, "")
            value = value.replace(" ", "").replace("\u00a0", "")
            if "," in value and "." not in value:  # 18,50 as written in Portugal
                value = value.replace(",", ".")
            value = value.replace(",", "")  # 1,250.00
        try:
            return super().to_python(value)
        except (InvalidOperation, forms.ValidationError) as exc:
            raise forms.ValidationError("Enter an amount such as 18 or 18.50.", code="invalid") from exc

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.pop("max", None)
        attrs["step"] = "any"
        return attrs


class MoneyFormMixin:
    """For a ModelForm whose ``money_fields`` are integer minor units on the model: shows them
    in units and stores what is typed in minor units of ``form_currency()``."""

    money_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        currency = self.form_currency()
        for name in self.money_fields:
            stored = getattr(self.instance, name, None)
            if self.instance.pk and stored is not None:
                self.initial[name] = to_units(stored, currency)
            symbol = SYMBOLS.get(currency, currency)
            self.fields[name].help_text = self.fields[name].help_text or f"In {symbol}: 18 means {symbol}18.00."

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
