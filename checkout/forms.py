"""Attendee-facing forms. Labels are the public contract: Name, Email, each question's text."""

from django import forms
from django.utils.translation import gettext_lazy as _

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

    def __init__(self, *args, questions, **kwargs):
        super().__init__(*args, **kwargs)
        self.questions = list(questions)
        for q in self.questions:
            name = f"q_{q.pk}"
            if q.kind == Question.Kind.CHECKBOX:
                self.fields[name] = forms.BooleanField(label=q.text, required=q.required)
            elif q.kind == Question.Kind.CHOICE:
                choices = [("", "—")] + [(c, c) for c in q.choice_list]
                self.fields[name] = forms.ChoiceField(label=q.text, choices=choices, required=q.required)
            else:
                self.fields[name] = forms.CharField(label=q.text, required=q.required, max_length=1000)

    def answers(self) -> dict[int, str]:
        result = {}
        for q in self.questions:
            value = self.cleaned_data.get(f"q_{q.pk}")
            if q.kind == Question.Kind.CHECKBOX:
                result[q.pk] = "yes" if value else "no"
            elif value not in (None, ""):
                result[q.pk] = str(value)
        return result


class PaymentChoiceForm(forms.Form):
    provider = forms.ChoiceField(label=_("Payment method"), widget=forms.RadioSelect)
    phone = forms.CharField(label=_("Phone (MB WAY)"), required=False, max_length=20,
                            widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}))

    def __init__(self, *args, providers, **kwargs):
        super().__init__(*args, **kwargs)
        from payments.registry import provider_classes

        classes = provider_classes()
        self.fields["provider"].choices = [(p, classes[p].label) for p in providers]
        if len(providers) == 1:
            self.fields["provider"].initial = providers[0]
