"""The order page's actions in the admin: refund, cancel, resend the tickets, resolve.

``OrderActionsMixin`` goes on the orders' ``ModelAdmin``. Each action is a page of its own:
GET shows what will happen and asks to confirm, POST acts and goes back to the order with
a message. The pages are thin: they parse the form and call ``payments.refunds`` or
``checkout.order_actions``; an order of another organization is a 404 (the admin's own
tenant-scoped queryset finds it or not), and ``ievents.roles.can`` decides who may act.
"""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ievents import roles
from payments import refunds
from payments import services as payment_services
from payments.base import to_major_units, to_minor_units
from payments.models import Refund

from . import order_actions
from .models import OrderAction, Ticket


# --- Forms -------------------------------------------------------------------------------
class ActionForm(forms.Form):
    # One per page shown: the same form sent twice (a double click) acts once.
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)


class RefundForm(ActionForm):
    amount = forms.CharField(label="Amount to refund", max_length=20,
                             help_text="In the order's currency, as you would write it: 12.50")
    tickets = forms.ModelMultipleChoiceField(
        queryset=Ticket.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        label="Tickets this refund voids", help_text="A full refund voids every ticket of the order.")
    restock = forms.BooleanField(required=False, label="Put the voided tickets back on sale")
    outside = forms.BooleanField(required=False, label="The money was given back outside iEvents (a bank transfer…)")
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
                           label="Note", help_text="Why, or how the money went back. Kept in the order's history.")

    def __init__(self, *args, session, plan: refunds.RefundPlan, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.fields["tickets"].queryset = (Ticket.objects.filter(session=session, voided_at__isnull=True)
                                           .select_related("ticket_type"))
        self.fields["tickets"].label_from_instance = lambda t: f"{t.code} · {t.ticket_type.name}"
        if not plan.through_provider:
            self.fields["outside"].initial = True
            self.fields["outside"].disabled = True
            self.fields["outside"].help_text = "This payment has no refund API: only a refund made outside can be recorded."

    def clean_amount(self) -> int:
        try:
            amount = to_minor_units(self.cleaned_data["amount"])
        except ValueError:
            raise forms.ValidationError("Write an amount such as 12.50.") from None
        if amount <= 0:
            raise forms.ValidationError("Give an amount above zero.")
        if amount > self.plan.refundable:
            raise forms.ValidationError(
                f"At most {order_actions.money_text(self.plan.refundable, self.plan.currency)} is left to refund.")
        return amount

    def clean(self):
        cleaned = super().clean()
        if (cleaned.get("outside") or not self.plan.through_provider) and not cleaned.get("note", "").strip():
            self.add_error("note", "Say how the money was given back: a note is required for a refund made outside.")
        return cleaned


class CancelForm(ActionForm):
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}), label="Note")


class ResendForm(ActionForm):
    email = forms.EmailField(label="Send to", help_text="Correct the address here if the attendee mistyped it.")


class ResolveForm(ActionForm):
    note = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}), label="What was done about it")


# --- What each action is -------------------------------------------------------------------
ACTIONS = {
    # name: (button label, role action, form)
    "refund": ("Refund", "refund", RefundForm),
    "cancel": ("Cancel order", "cancel_order", CancelForm),
    "resend": ("Resend tickets", "resend_tickets", ResendForm),
    "resolve": ("Resolve", "resolve", ResolveForm),
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
    fields = ["at", "summary", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "actions taken"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RefundInline(OrderActionInline):
    model = Refund
    fields = ["created_at", "amount_shown", "status", "provider_reference", "made_outside", "by_name", "note"]
    readonly_fields = fields
    verbose_name_plural = "refunds"

    @admin.display(description="amount")
    def amount_shown(self, refund):
        return order_actions.money_text(refund.amount, refund.currency)

    @admin.display(description="by")
    def by_name(self, refund):
        return order_actions.who(refund.by)


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
        return [*super().get_inlines(request, obj), RefundInline, OrderActionInline]

    def _action_view(self, action: str):
        def view(request, object_id):
            return self.order_action_view(request, object_id, action)
        return view

    def order_action_view(self, request, object_id, action: str):
        session = self.get_object(request, unquote(object_id))  # the tenant-scoped queryset: another's is None
        if session is None:
            raise Http404("No such order.")
        label, permission, form_class = ACTIONS[action]
        if not self.has_view_permission(request, session) or not roles.can(request.user, session.organization,
                                                                             permission):
            raise PermissionDenied
        order_page = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[session.pk])
        if action not in order_actions.available_actions(session):
            messages.warning(request, f"{label}: this does not apply to the order as it is now ({session.get_status_display()}).")
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
            "opts": self.opts, "original": session, "title": f"{label}: order {session.public_id}",
            "action": action, "action_label": label, "form": form, "plan": plan, "order_page": order_page,
            "left": order_actions.money_text(max(session.amount_paid - session.amount_refunded, 0), session.currency),
            "paid_states": order_actions.PAID_STATES,
            "amounts": self._amounts(session, plan),
        }
        return TemplateResponse(request, "admin/checkout/order_action.html", context)

    @staticmethod
    def _initial(session, action: str, plan) -> dict:
        initial = {"token": secrets.token_urlsafe(24)}
        if action == "refund":
            initial["amount"] = to_major_units(plan.refundable)
        elif action == "resend":
            initial["email"] = session.customer_email
        return initial

    @staticmethod
    def _amounts(session, plan) -> list[tuple[str, str]]:
        money = order_actions.money_text
        rows = [("Order total", money(session.amount_total, session.currency)),
                ("Paid", money(session.amount_paid, session.currency)),
                ("Refunded so far", money(session.amount_refunded, session.currency))]
        if plan is not None:
            rows.append(("Left to refund", money(plan.refundable, session.currency)))
            if plan.payment is not None:
                how = plan.provider_label + ("" if plan.through_provider else " (no refund API: record one made outside)")
                rows.append(("Paid with", how))
        return rows

    @staticmethod
    def _act(request, session, action: str, data: dict) -> str:
        """Call the service; return the message to show on the order's page."""
        user, key = request.user, data["token"]
        money = order_actions.money_text
        if action == "refund":
            made = refunds.refund(session, data["amount"], by=user, note=data.get("note", ""),
                                  restock=data.get("restock", False), key=key,
                                  tickets=[t.pk for t in data.get("tickets") or []],
                                  outside=bool(data.get("outside")))
            pending = " The provider is processing it." if made.status == Refund.Status.PENDING else ""
            return f"Refunded {money(made.amount, made.currency)}.{pending}"
        if action == "cancel":
            canceled, problems = payment_services.cancel_order(session, by=user, note=data.get("note", ""), key=key)
            said = f"Order {canceled.public_id} canceled ({canceled.get_status_display().lower()})."
            return " ".join([said, *(problem[:1].upper() + problem[1:] + "." for problem in problems)])
        if action == "resend":
            address = order_actions.resend_tickets(session, to=data["email"], by=user)
            return f"The tickets were sent again to {address}."
        order_actions.resolve_attention(session, by=user, note=data["note"])
        return "The flag was cleared and your note kept in the order's history."
