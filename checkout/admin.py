"""Orders (checkout sessions) for organizers: found in a second, read like an order.

The list searches by email, name, ticket code and order reference and exports what it shows
as CSV (``checkout.admin_export``). An order's page shows its tickets, answers, payments and
history in words, with the technical fields folded under "Technical". Orders, their
payments and their history are records: never edited or deleted here; acting on an order
goes through the buttons (``checkout.admin_actions``).
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import formats, timezone
from django.utils.html import format_html

from ievents import roles
from ievents.admin_base import ReadOnlyTenantAdmin
from ievents.admin_money import format_money
from ievents.admin_overview import SOLD_STATUSES
from ievents.erasure_admin import erase_selected_attendees
from payments.admin import provider_link, readable_instructions
from payments.models import Provider

from .admin_actions import OrderActionsMixin
from .admin_export import csv_lines, export_questions, ticket_rows
from .models import CheckoutSession, Source, Transition

SOURCE_WORDS = {
    Source.ATTENDEE: "by the attendee", Source.PROVIDER_WEBHOOK: "by the provider's notification",
    Source.RETURN_PAGE: "on the attendee's return from the provider", Source.ADMIN: "in the back office",
    Source.API: "through the API", Source.TIMER: "automatically",
}


def provider_name(code: str) -> str:
    return Provider(code).label if code in Provider.values else code


def history_sentence(step: Transition, session: CheckoutSession) -> str:
    """A transition as an organizer says it: "Payment started with Stripe", "Paid €125.00"."""
    money = format_money(session.amount_paid or session.amount_total, session.currency)
    words = {
        "gate_deny": "Your pre-payment gate refused the details",
        "start_payment": f"Payment started with {provider_name(step.detail)}" if step.detail else "Payment started",
        "processing": "Payment is being processed",
        "authorize": "Payment authorized",
        "reject": "Payment declined",
        "pay": "Free order confirmed" if step.detail == "free order" else f"Paid {money}",
        "fail_capture": "Payment could not be captured",
        "complete": "Completed: tickets issued",
        "expire": "Expired",
        "cancel": "Canceled",
        "refund": "Refunded",
        "partial_refund": "Partly refunded",
    }
    return words.get(step.trigger, step.trigger.replace("_", " ").capitalize())


def history(session: CheckoutSession) -> list[dict]:
    entries = []
    for step in session.transitions.all():
        # A payment's provider and a free order are already said by the sentence.
        said = step.trigger == "start_payment" or (step.trigger == "pay" and step.detail == "free order")
        entries.append({"at": step.at, "text": history_sentence(step, session),
                        "who": SOURCE_WORDS.get(step.source, step.source), "note": "" if said else step.detail})
    return entries


class AttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Needs attention"), ("no", "Nothing to do")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(needs_attention="")
        if self.value() == "no":
            return queryset.filter(needs_attention="")
        return queryset


class ProviderFilter(admin.SimpleListFilter):
    """By payment provider, under the providers' names."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return Provider.choices

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


class SoldFilter(admin.SimpleListFilter):
    title = "sold"
    parameter_name = "sold"

    def lookups(self, request, model_admin):
        return [("yes", "Paid orders")]

    def queryset(self, request, queryset):
        return queryset.filter(status__in=SOLD_STATUSES) if self.value() == "yes" else queryset


class RefundedFilter(admin.SimpleListFilter):
    title = "refunds"
    parameter_name = "refunded"

    def lookups(self, request, model_admin):
        return [("yes", "With a refund")]

    def queryset(self, request, queryset):
        return queryset.filter(amount_refunded__gt=0) if self.value() == "yes" else queryset


TECHNICAL_FIELDS = ["public_id", "version", "details_version", "gate_approved_fingerprint", "gate_approved_at",
                    "holds_released_shown", "expires_at", "confirmation_sent_at", "confirmation_lease_until",
                    "success_url", "cancel_url", "webhook_url", "metadata", "updated_at"]


TICKET_CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
REFERENCE = re.compile(r"cs_[A-Za-z0-9]{16,}", re.IGNORECASE)


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(OrderActionsMixin, ReadOnlyTenantAdmin):
    title = "Orders"
    list_display = ["reference", "status_shown", "attendee", "email", "event", "amount", "paid",
                    "created", "attention"]
    list_display_links = ["reference"]
    list_select_related = ["event"]
    # RelatedOnly: the plain filter would offer every organization's events by name.
    list_filter = [("event", admin.RelatedOnlyFieldListFilter), "status", ProviderFilter, AttentionFilter, SoldFilter,
                   RefundedFilter]
    # "=": a ticket code is matched whole (case-insensitively), the rest by any part.
    search_fields = ["public_id", "customer_email", "customer_name", "=tickets__code"]
    search_help_text = "Email, name, ticket code or order reference (cs_…)"
    actions = [erase_selected_attendees]
    date_hierarchy = "created_at"
    fieldsets = [("Technical", {"classes": ["collapse"], "fields": TECHNICAL_FIELDS})]
    readonly_fields = TECHNICAL_FIELDS
    change_list_template = "admin/checkout/checkoutsession/change_list.html"
    change_form_template = "admin/checkout/checkoutsession/change_form.html"

    def get_search_results(self, request, queryset, search_term):
        """A whole ticket code, email or order reference is looked up exactly, through its
        index, so an order is found at once in a year of orders; anything else (a name, part
        of an email) is searched as Django's admin searches."""
        term = search_term.strip()
        if TICKET_CODE.fullmatch(term.upper()):
            return queryset.filter(tickets__code=term.upper()), False
        if EMAIL.fullmatch(term):
            return queryset.filter(customer_email__iexact=term), False
        if REFERENCE.fullmatch(term):
            return queryset.filter(public_id__iexact=term), False
        return super().get_search_results(request, queryset, search_term)

    def has_erase_permission(self, request):
        """The erase action: for a member whose role may erase in some organization (the
        action then skips the orders of any other)."""
        return request.user.is_superuser or any(
            roles.allows(role, roles.ERASE_ATTENDEE) for role in roles.roles_of(request.user).values())

    @admin.display(description="Order", ordering="public_id")
    def reference(self, session):
        return session.public_id

    @admin.display(description="Attendee", ordering="customer_name")
    def attendee(self, session):
        return session.customer_name or "—"

    @admin.display(description="Email", ordering="customer_email")
    def email(self, session):
        return session.customer_email

    @admin.display(description="Created", ordering="created_at")
    def created(self, session):
        return formats.date_format(timezone.localtime(session.created_at), "j M Y H:i")

    @admin.display(description="Status", ordering="status")
    def status_shown(self, session):
        return format_html('<span class="order-status {}">{}</span>', session.status, session.get_status_display())

    @admin.display(description="Amount", ordering="amount_total")
    def amount(self, session):
        return format_money(session.amount_total, session.currency)

    @admin.display(description="Paid", ordering="amount_paid")
    def paid(self, session):
        return format_money(session.amount_paid, session.currency) if session.amount_paid else "—"

    @admin.display(description="Attention")
    def attention(self, session):
        if not session.needs_attention:
            return ""
        return format_html('<span class="order-status needs-attention" title="{}">Needs attention</span>',
                           session.needs_attention)

    @admin.display(description="Holds released")
    def holds_released_shown(self, session):
        return "yes" if session.holds_released else "no"

    def get_urls(self):
        export = path("export/", self.admin_site.admin_view(self.export_csv), name="checkout_checkoutsession_export")
        return [export, *super().get_urls()]

    def export_csv(self, request):
        """The orders the list shows (its filters and search), one CSV row per ticket, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        orders = self.get_changelist_instance(request).queryset
        lines = csv_lines(ticket_rows(orders, export_questions(orders)))
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="orders-{timezone.now():%Y%m%d-%H%M}.csv"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        session = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if session is not None:
            context.update(order_page(session))
            context["title"] = f"Order {session.public_id}"
        return super().change_view(request, object_id, form_url, context)


def order_page(session: CheckoutSession) -> dict:
    """What an order's page shows, read in a handful of queries."""
    line_items = list(session.line_items.select_related("ticket_type"))
    line_prices = {item.ticket_type_id: item.unit_price for item in line_items}
    tickets = [{"code": t.code, "type": t.ticket_type.name, "holder": t.holder_name,
                "price": format_money(line_prices.get(t.ticket_type_id, t.ticket_type.price), session.currency)}
               for t in session.tickets.select_related("ticket_type")]
    lines = [{"type": item.ticket_type.name, "quantity": item.quantity,
              "price": format_money(item.unit_price, session.currency),
              "total": format_money(item.amount, session.currency)}
             for item in line_items]
    answers = [(a.question.text, a.value) for a in session.answers.select_related("question").order_by(
        "question__position", "question_id")]
    payments = [{"payment": p, "provider": p.get_provider_display(), "amount": format_money(p.amount, p.currency),
                 "received": format_money(p.amount_received, p.currency), "link": provider_link(p),
                 "instructions": readable_instructions(p)} for p in session.payments.order_by("id")]
    return {
        "order": session,
        "order_amount": format_money(session.amount_total, session.currency),
        "order_paid": format_money(session.amount_paid, session.currency),
        "order_provider": provider_name(session.provider) if session.provider else "",
        "order_refunded": format_money(session.amount_refunded, session.currency) if session.amount_refunded else "",
        "order_tickets": tickets, "order_lines": lines, "order_answers": answers, "order_payments": payments,
        "order_history": history(session),
    }
