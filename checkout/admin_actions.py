"""The order page's actions in the admin: refund, cancel, resend the tickets, resolve.

``OrderActionsMixin`` goes on the orders' ``ModelAdmin``. Each action is a page of its own:
GET shows what will happen and asks to confirm, POST acts and goes back to the order with
a message. The pages are thin: they parse the form and call ``payments.refunds`` or
``checkout.order_actions``; an order of another organization is a 404 (the admin's own
tenant-scoped queryset finds it or not), and ``ievents.roles.can`` decides who may act.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ievents import roles
from ievents.money import exponent, format_money, format_units, parse_amount, to_minor, to_units
from payments import refunds
from payments import services as payment_services
from payments.models import Refund

from . import order_actions
from .models import PAID_STATUSES, AttendeeEmail, OrderAction, Ticket


# --- Forms -------------------------------------------------------------------------------
class ActionForm(forms.Form):
    # One per page shown: the same form sent twice (a double click) acts once.
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)


class RefundForm(ActionForm):
    amount = forms.CharField(label=_("Amount to refund"), max_length=20,
                             help_text=_("In the order's currency, as you would write it: 12.50"))
    tickets = forms.ModelMultipleChoiceField(
        queryset=Ticket.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        label=_("Tickets this refund voids"), help_text=_("A full refund voids every ticket of the order."))
    restock = forms.BooleanField(required=False, label=_("Put the voided tickets back on sale"))
    outside = forms.BooleanField(required=False, label=_("The money was given back outside iEvents (a bank transfer…)"))
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
                           label=_("Note"), help_text=_("Why, or how the money went back. Kept in the order's history."))

    def __init__(self, *args, session, plan: refunds.RefundPlan, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.fields["tickets"].queryset = (Ticket.objects.filter(session=session, voided_at__isnull=True)
                                           .select_related("ticket_type"))
        self.fields["tickets"].label_from_instance = lambda t: f"{t.code} · {t.ticket_type.name}"
        if not plan.through_provider:
            self.fields["outside"].initial = True
            self.fields["outside"].disabled = True
            self.fields["outside"].help_text = _("This payment has no refund API: only a refund made outside can be recorded.")

    def clean_amount(self) -> int:
        """The amount in the order's currency, as the organizer writes it (``12,50`` in
        Portuguese, ``1000`` yen), in minor units."""
        currency = self.plan.currency
        try:
            units = parse_amount(self.cleaned_data["amount"], currency)
        except ValueError:
            example = Decimal("12.50") if exponent(currency) else Decimal(1250)
            raise forms.ValidationError(gettext("Write an amount such as %(example)s.") % {
                "example": format_units(example, currency)}) from None
        try:
            amount = to_minor(units, currency)
        except ValueError as exc:  # more decimals than the currency has: ¥10.5
            raise forms.ValidationError(str(exc)) from None
        if amount <= 0:
            raise forms.ValidationError(gettext("Give an amount above zero."))
        if amount > self.plan.refundable:
            raise forms.ValidationError(gettext("At most %(amount)s is left to refund.") % {
                "amount": format_money(self.plan.refundable, currency)})
        return amount

    def clean(self):
        cleaned = super().clean()
        if (cleaned.get("outside") or not self.plan.through_provider) and not cleaned.get("note", "").strip():
            self.add_error("note", gettext("Say how the money was given back: a note is required for a refund made outside."))
        return cleaned


class CancelForm(ActionForm):
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
                           label=_("Reason"), help_text=_("Sent to the attendee in the cancellation email, and kept "
                                                          "in the order's history."))


class ResendForm(ActionForm):
    email = forms.EmailField(label=_("Send to"), help_text=_("Correct the address here if the attendee mistyped it."))


class ResolveForm(ActionForm):
    note = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}), label=_("What was done about it"))
    tell_attendee = forms.BooleanField(required=False, label=_("Email this note to the attendee"))


# --- What each action is -------------------------------------------------------------------
ACTIONS = {
    # name: (button label, role action, form)
    "refund": (_("Refund"), "refund", RefundForm),
    "cancel": (_("Cancel order"), "cancel_order", CancelForm),
    "resend": (_("Resend tickets"), "resend_tickets", ResendForm),
    "resolve": (_("Resolve"), "resolve", ResolveForm),
}


def url_name(opts, action: str) -> str:
    return f"{opts.app_label}_{opts.model_name}_{action}"


ORDERS_URL = "admin:checkout_checkoutsession"


def buttons_for(request, session) -> list[dict]:
    """The action buttons the order's page shows: those that apply to it and that this user may use."""
    return [
        {"name": action, "label": ACTIONS[action][0], "url": reverse(f"{ORDERS_URL}_{action}", args=[session.pk])}
        for action in order_actions.available_actions(session)
        if roles.can(request.user, session.organization, ACTIONS[action][1])
    ]


# --- The admin mixin -------------------------------------------------------------------------
class OrderActionInline(admin.TabularInline):
    model = OrderAction
    # The action's kind and who took it, in the reader's language; the stored summary is the
    # history's record in the words of the moment (shown in the order's history API).
    fields = ["at", "kind", "by_name", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("actions taken")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("by"))
    def by_name(self, action):
        return order_actions.who(action.by) if action.by else gettext("someone")


class RefundInline(OrderActionInline):
    model = Refund
    fields = ["created_at", "amount_shown", "status", "provider_reference", "made_outside", "by_name", "note"]
    verbose_name = _("refund")
    readonly_fields = fields
    verbose_name_plural = _("refunds")

    @admin.display(description=_("amount"))
    def amount_shown(self, refund):
        return format_money(refund.amount, refund.currency)

    @admin.display(description=_("by"))
    def by_name(self, refund):
        return order_actions.who(refund.by) if refund.by else gettext("someone")


class AttendeeEmailInline(OrderActionInline):
    """What the attendee was told, and whether it went out (checkout.attendee_emails)."""

    model = AttendeeEmail
    fields = ["created_at", "kind", "to", "sent_at", "last_error"]
    readonly_fields = fields
    verbose_name_plural = "emails to the attendee"


class OrderActionsMixin:
    """Adds ``<id>/refund/``, ``/cancel/``, ``/resend/`` and ``/resolve/`` to the orders' admin,
    and the refunds and actions taken to the order's page."""

    def get_urls(self):
        opts = self.opts
        ours = [
            path(f"<path:object_id>/{action}/", self.admin_site.admin_view(self._action_view(action)),
                 name=url_name(opts, action))
            for action in ACTIONS
        ]
        return ours + super().get_urls()

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), RefundInline, OrderActionInline, AttendeeEmailInline]

    def _action_view(self, action: str):
        def view(request, object_id):
            return self.order_action_view(request, object_id, action)
        return view

    def order_action_view(self, request, object_id, action: str):
        session = self.get_object(request, unquote(object_id))  # the tenant-scoped queryset: another's is None
        if session is None:
            raise Http404(gettext("No such order."))
        label, permission, form_class = ACTIONS[action]
        if not self.has_view_permission(request, session) or not roles.can(request.user, session.organization,
                                                                             permission):
            raise PermissionDenied
        order_page = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[session.pk])
        if action not in order_actions.available_actions(session):
            messages.warning(request, gettext("%(action)s: this does not apply to the order as it is now (%(status)s).") % {
                "action": label, "status": session.get_status_display()})
            return HttpResponseRedirect(order_page)
        plan = refunds.plan(session) if action == "refund" else None
        extra = {"session": session, "plan": plan} if action == "refund" else {}
        if request.method == "POST":
            form = form_class(request.POST, **extra)
            if form.is_valid():
                try:
                    done = self._act(request, session, action, form.cleaned_data)
                except (refunds.RefundRefused, refunds.RefundFailed, order_actions.OrderActionRefused) as exc:
                    messages.error(request, exc.message)
                else:
                    messages.success(request, done)
                    return HttpResponseRedirect(order_page)
        else:
            form = form_class(initial=self._initial(session, action, plan), **extra)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "original": session,
            "title": gettext("%(action)s: order %(order)s") % {"action": label, "order": session.public_id},
            "action": action, "action_label": label, "form": form, "plan": plan, "order_page": order_page,
            "left": format_money(max(session.amount_paid - session.amount_refunded, 0), session.currency),
            "paid_states": PAID_STATUSES,
            "amounts": self._amounts(session, plan),
        }
        return TemplateResponse(request, "admin/checkout/order_action.html", context)

    @staticmethod
    def _initial(session, action: str, plan) -> dict:
        initial = {"token": secrets.token_urlsafe(24)}
        if action == "refund":
            initial["amount"] = format_units(to_units(plan.refundable, session.currency), session.currency)
        elif action == "resend":
            initial["email"] = session.customer_email
        return initial

    @staticmethod
    def _amounts(session, plan) -> list[tuple[str, str]]:
        money = format_money
        rows = [(gettext("Order total"), money(session.amount_total, session.currency)),
                (gettext("Paid"), money(session.amount_paid, session.currency)),
                (gettext("Refunded so far"), money(session.amount_refunded, session.currency))]
        if plan is not None:
            rows.append((gettext("Left to refund"), money(plan.refundable, session.currency)))
            if plan.payment is not None:
                how = str(plan.provider_label) if plan.through_provider else gettext(
                    "%(provider)s (no refund API: record one made outside)") % {"provider": plan.provider_label}
                rows.append((gettext("Paid with"), how))
        return rows

    @staticmethod
    def _act(request, session, action: str, data: dict) -> str:
        """Call the service; return the message to show on the order's page."""
        user, key = request.user, data["token"]
        money = format_money
        if action == "refund":
            made = refunds.refund(session, data["amount"], by=user, note=data.get("note", ""),
                                  restock=data.get("restock", False), key=key,
                                  tickets=[t.pk for t in data.get("tickets") or []],
                                  outside=bool(data.get("outside")))
            if made.status == Refund.Status.PENDING:
                return gettext("Refunded %(amount)s. The provider is processing it.") % {
                    "amount": money(made.amount, made.currency)}
            return gettext("Refunded %(amount)s.") % {"amount": money(made.amount, made.currency)}
        if action == "cancel":
            canceled, problems = payment_services.cancel_order(session, by=user, note=data.get("note", ""), key=key)
            said = gettext("Order %(order)s canceled (%(status)s).") % {
                "order": canceled.public_id, "status": canceled.get_status_display().lower()}
            return " ".join([said, *(problem[:1].upper() + problem[1:] + "." for problem in problems)])
        if action == "resend":
            address = order_actions.resend_tickets(session, to=data["email"], by=user)
            return gettext("The tickets are being sent again to %(email)s.") % {"email": address}
        order_actions.resolve_attention(session, by=user, note=data["note"],
                                        tell_attendee=bool(data.get("tell_attendee")))
        return gettext("The flag was cleared and your note kept in the order's history.")
