"""Attendee-facing forms. Labels are the public contract: Name, Email, each question's text."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from ievents.models import Question


def _count(value) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


class TicketSelectionForm(forms.Form):
    def __init__(self, *args, ticket_types, **kwargs):
        super().__init__(*args, **kwargs)
        self.ticket_types = list(ticket_types)
        for tt in self.ticket_types:
            # Availability is checked under the row lock when the tickets are reserved
            # (SoldOut gives the attendee a clear message); capping the field at what was
            # available when the page loaded would only produce a confusing form error.
            limit = tt.max_per_order
            self.fields[f"qty_{tt.public_id}"] = forms.IntegerField(
                label=tt.name, min_value=0, max_value=limit, initial=0, required=False,
                widget=forms.NumberInput(attrs={"inputmode": "numeric", "data-price": self.price_of(tt)}),
                # The limit in words ("At most 10 tickets per order"), not Django's "less than or equal".
                error_messages={"max_value": ngettext_lazy("At most %(limit_value)s ticket per order.",
                                                           "At most %(limit_value)s tickets per order.",
                                                           "limit_value"),
                                "min_value": _("Quantities cannot be negative."),
                                "invalid": _("Write a number of tickets, such as 2.")},
            )

    @staticmethod
    def price_of(tt) -> int:
        """What one ticket costs the attendee: with a promo code's discount when the page
        offers one (``checkout.promo.offered_ticket_types``)."""
        return getattr(tt, "offer_price", tt.price)

    def clean(self):
        data = super().clean()
        if self.errors:  # a quantity was invalid: its own error says why
            return data
        if not any(data.get(f"qty_{tt.public_id}") for tt in self.ticket_types):
            raise forms.ValidationError(_("Choose at least one ticket."), code="nothing_chosen")
        return data

    def selected(self):
        return [(tt, self.cleaned_data.get(f"qty_{tt.public_id}") or 0) for tt in self.ticket_types]

    def total(self) -> int:
        """The running total of what is chosen (minor units); 0 before anything valid is."""
        if not self.is_bound or not hasattr(self, "cleaned_data"):
            return sum(self.price_of(tt) * _count(self.initial.get(f"qty_{tt.public_id}")) for tt in self.ticket_types)
        return sum(self.price_of(tt) * qty for tt, qty in self.selected())


class AttendeeForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    def __init__(self, *args, questions, holder_slots=(), invoice_details="off", **kwargs):
        super().__init__(*args, **kwargs)
        self.holder_slots = list(holder_slots)
        questions = list(questions)
        # Per-ticket questions go to each named ticket's holder; with no named ticket in the
        # order they are asked once, like the others.
        self.ticket_questions = [q for q in questions if q.per_ticket] if self.holder_slots else []
        self.questions = [q for q in questions if q not in self.ticket_questions]
        self.invoice_details = invoice_details
        for q in self.questions:
            self.fields[f"q_{q.pk}"] = _question_field(q, q.text)
        self._add_holder_fields()
        self._add_invoice_fields()

    # --- Named tickets (checkout.holders) -------------------------------------------------
    def _add_holder_fields(self):
        for slot in self.holder_slots:
            self.fields[slot.field("name")] = forms.CharField(
                label=_("Name on ticket %(number)s (%(type)s)") % {"number": slot.number, "type": slot.type_name},
                max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"}))
            if slot.asks_email:
                self.fields[slot.field("email")] = forms.EmailField(
                    label=_("Email for ticket %(number)s (%(type)s)") % {"number": slot.number, "type": slot.type_name},
                    required=False, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
            for q in self.ticket_questions:
                self.fields[slot.field(f"q_{q.pk}")] = _question_field(
                    q, _("%(question)s (ticket %(number)s)") % {"question": q.text, "number": slot.number})

    def holder_fields(self):
        return [field for field in self if field.name.startswith("holder_")]

    def holders(self) -> dict[int, list[dict]]:
        """``{line item id: [{"name", "email"}, …]}``, one entry per ticket, in order."""
        result: dict[int, list[dict]] = {}
        for slot in self.holder_slots:
            holder = {
                "name": self.cleaned_data.get(slot.field("name"), "").strip(),
                "email": (self.cleaned_data.get(slot.field("email")) or "").strip() if slot.asks_email else "",
            }
            if self.ticket_questions:
                holder["answers"] = {q.text: _answer(q, self.cleaned_data.get(slot.field(f"q_{q.pk}")))
                                     for q in self.ticket_questions}
            result.setdefault(slot.line_item_id, []).append(holder)
        return result

    # --- Invoice details (checkout.invoice) -----------------------------------------------
    def _add_invoice_fields(self):
        if self.invoice_details == "off":
            return
        required = self.invoice_details == "required"
        self.fields["invoice_tax_id"] = forms.CharField(
            label=_("NIF (tax number)"), max_length=20, required=required,
            help_text=_("Portuguese NIF, or another EU VAT number with its country code (ES…, FR…)."),
            widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "text"}))
        self.fields["invoice_name"] = forms.CharField(
            label=_("Name or company on the invoice"), max_length=200, required=required,
            widget=forms.TextInput(attrs={"autocomplete": "organization"}))
        self.fields["invoice_address"] = forms.CharField(
            label=_("Invoice address"), max_length=500, required=required,
            widget=forms.TextInput(attrs={"autocomplete": "street-address"}))

    def invoice_fields(self):
        return [field for field in self if field.name.startswith("invoice_")]

    def clean_invoice_tax_id(self) -> str:
        from .invoice import TaxIdInvalid, clean_tax_id

        try:
            return clean_tax_id(self.cleaned_data.get("invoice_tax_id", ""))
        except TaxIdInvalid as exc:
            raise forms.ValidationError(exc.message, code="tax_id_invalid") from None

    def clean(self):
        data = super().clean()
        if self.invoice_details == "optional" and not self.errors:
            given = [data.get(name) for name in ("invoice_tax_id", "invoice_name", "invoice_address")]
            if any(given) and not data.get("invoice_tax_id"):
                self.add_error("invoice_tax_id", _("Give the NIF for the invoice, or leave the invoice details empty."))
        return data

    def invoice(self) -> dict[str, str]:
        return {name: (self.cleaned_data.get(name) or "").strip()
                for name in ("invoice_tax_id", "invoice_name", "invoice_address")}

    def other_fields(self):
        """The buyer's name, email and the organizer's questions."""
        skip = {field.name for field in (*self.holder_fields(), *self.invoice_fields())}
        return [field for field in self if field.name not in skip]

    def answers(self) -> dict[int, str]:
        result = {}
        for q in self.questions:
            value = _answer(q, self.cleaned_data.get(f"q_{q.pk}"))
            if value:
                result[q.pk] = value
        return result


def _question_field(q, label) -> forms.Field:
    """The form field asking question ``q`` (labelled ``label``)."""
    if q.kind == Question.Kind.CHECKBOX:
        return forms.BooleanField(label=label, required=q.required)
    if q.kind == Question.Kind.CHOICE:
        return forms.ChoiceField(label=label, choices=[("", "—")] + [(c, c) for c in q.choice_list],
                                 required=q.required)
    return forms.CharField(label=label, required=q.required, max_length=1000)


def _answer(q, value) -> str:
    """An answer as stored: "yes"/"no" for a tick box, the text otherwise ("" for none)."""
    if q.kind == Question.Kind.CHECKBOX:
        return "yes" if value else "no"
    return "" if value in (None, "") else str(value)


class PaymentChoiceForm(forms.Form):
    provider = forms.ChoiceField(label=_("Payment method"), widget=forms.RadioSelect)
    phone = forms.CharField(label=_("Phone (MB WAY)"), required=False, max_length=20,
                            widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}))

    def __init__(self, *args, providers, **kwargs):
        super().__init__(*args, **kwargs)
        from payments.registry import PROVIDER_CLASSES

        self.fields["provider"].choices = [(p, PROVIDER_CLASSES[p].checkout_label) for p in providers]
        if len(providers) == 1:
            self.fields["provider"].initial = providers[0]
