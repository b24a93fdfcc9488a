"""Invoice details an event may ask for: a tax number, a name or company, an address.

We pass them on (the gate, outbound events, the order page, the CSV) for the organizer's own
invoicing software; we do not issue certified invoices ourselves. A Portuguese NIF is
checked as the tax authority checks it (nine digits, the last a check digit: ``stdnum.pt.nif``);
any other EU VAT number is written with its country prefix (``ES…``, ``DE…``) and checked
by that country's rules (``stdnum.eu.vat``).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from stdnum.eu import vat
from stdnum.exceptions import ValidationError as NumberInvalid
from stdnum.pt import nif


class TaxIdInvalid(Exception):
    """Not a valid NIF or EU VAT number; ``message`` says which, for people (in English)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


NIF_INVALID = _("This NIF is not valid: check its nine digits.")
VAT_INVALID = _("This VAT number is not valid: write it with its country code, such as ES12345678Z.")


def clean_tax_id(value: str) -> str:
    """The number as we keep it (``501964843``, ``DE136695976``), or raise ``TaxIdInvalid``."""
    compact = "".join(value.split()).replace("-", "").replace(".", "").upper()
    if not compact:
        return ""
    if compact[:2].isalpha():
        if compact.startswith("PT"):
            return _nif(compact[2:])
        try:
            return vat.validate(compact)
        except NumberInvalid:
            raise TaxIdInvalid(VAT_INVALID) from None
    return _nif(compact)


def _nif(number: str) -> str:
    try:
        return nif.validate(number)
    except NumberInvalid:
        raise TaxIdInvalid(NIF_INVALID) from None
