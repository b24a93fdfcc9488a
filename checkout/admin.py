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
from django.http import FileResponse, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ievents import roles
from ievents.admin_base import ReadOnlyTenantAdmin, permitted_organization_ids
from ievents.admin_time import in_zone, local_text
from ievents.money import format_money
from ievents.operations.erasure_admin import erase_selected_attendees
from ievents.operations.overview import order_totals
from payments.admin import readable_instructions
from payments.models import provider_choices
from payments.registry import PROVIDER_CLASSES

from .admin_actions import OrderActionsMixin
from .admin_export import csv_lines, dialect_for, export_questions, ticket_rows, xlsx_file
from .formatting import order_reference
from .models import PAID_STATUSES, TICKET_CODE_ALPHABET, CheckoutSession, Source, Status, Transition, search_key

SOURCE_WORDS = {
    Source.ATTENDEE: _("by the attendee"), Source.PROVIDER_WEBHOOK: _("by the provider's notification"),
    Source.RETURN_PAGE: _("on the attendee's return from the provider"), Source.ADMIN: _("in the back office"),
    Source.API: _("through the API"), Source.TIMER: _("automatically"),
}


def history_sentence(step: Transition, session: CheckoutSession) -> str:
    """A transition as an organizer says it: "Payment started with Stripe", "Paid €125.00"."""
    money = format_money(session.amount_paid or session.amount_total, session.currency)
    provider = dict(provider_choices()).get(step.detail, step.detail)
    words = {
        "gate_deny": gettext("Your pre-payment gate refused the details"),
        "start_payment": gettext("Payment started with %(provider)s") % {"provider": provider} if provider
        else gettext("Payment started"),
        "processing": gettext("Payment is being processed"),
        "authorize": gettext("Payment authorized"),
        "reject": gettext("Payment declined"),
        "pay": gettext("Free order confirmed") if step.detail == "free order" else gettext("Paid %(amount)s") % {
            "amount": money},
        "fail_capture": gettext("Payment could not be captured"),
        "complete": gettext("Completed: tickets issued"),
        "expire": gettext("Expired"),
        "cancel": gettext("Canceled"),
        "refund": gettext("Refunded"),
        "partial_refund": gettext("Partly refunded"),
    }
    return words.get(step.trigger, step.trigger.replace("_", " ").capitalize())


def history(session: CheckoutSession) -> list[dict]:
    entries = []
    for step in session.transitions.all():
        # A payment's provider and a free order are already said by the sentence; a refund's
        # or a cancellation's who, how much and why are in the refunds and actions tables, in
        # the reader's language. What a provider's notification said is a technical detail:
        # folded into the entry's title, not written out.
        said = step.trigger in ("start_payment", "refund", "partial_refund", "cancel") or (
            step.trigger == "pay" and step.detail == "free order")
        technical = step.source in (Source.PROVIDER_WEBHOOK, Source.RETURN_PAGE)
        entries.append({"at": step.at, "text": history_sentence(step, session),
                        "who": SOURCE_WORDS.get(step.source, step.source),
                        "note": "" if said or technical else step.detail, "technical": step.detail if technical else ""})
    return entries


class EventFilter(admin.RelatedFieldListFilter):
    """By event: the events of the organizations the user sees, read from the events table.
    (``RelatedOnlyFieldListFilter`` reads the distinct events of every order on every page;
    the plain filter offers every organization's events by name.) Its parameter stays
    ``event__id__exact``: the overview links to the list with it."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        if request.user.is_superuser:
            return field.get_choices(include_blank=False, ordering=ordering)
        visible = permitted_organization_ids(request, roles.VIEW, model_admin.opts.label_lower)
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to={"organization__in": visible})


class CreatedFilter(admin.DateFieldListFilter):
    """When the order was made, by period (today, the past 7 days, this month, this year):
    fixed choices, where a date hierarchy read the bounds and distinct dates of every order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = _("Created")  # the list's column, in the reader's language (not the field's name)


class AttentionFilter(admin.SimpleListFilter):
    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", _("Needs attention")), ("no", _("Nothing to do"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(needs_attention="")
        if self.value() == "no":
            return queryset.filter(needs_attention="")
        return queryset


class ProviderFilter(admin.SimpleListFilter):
    """By payment provider, under the providers' names."""

    title = _("provider")
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return provider_choices()

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


class SoldFilter(admin.SimpleListFilter):
    title = _("sold")
    parameter_name = "sold"

    def lookups(self, request, model_admin):
        return [("yes", _("Paid orders"))]

    def queryset(self, request, queryset):
        return queryset.filter(status__in=PAID_STATUSES) if self.value() == "yes" else queryset


class MoneyFilter(admin.SimpleListFilter):
    """Orders that received money: the set the overview's "Net revenue" adds up."""

    title = _("money")
    parameter_name = "money"

    def lookups(self, request, model_admin):
        return [("received", _("Money received"))]

    def queryset(self, request, queryset):
        return queryset.filter(amount_paid__gt=0) if self.value() == "received" else queryset


class RefundedFilter(admin.SimpleListFilter):
    title = _("refunds")
    parameter_name = "refunded"

    def lookups(self, request, model_admin):
        return [("yes", _("With a refund"))]

    def queryset(self, request, queryset):
        return queryset.filter(amount_refunded__gt=0) if self.value() == "yes" else queryset


TECHNICAL_FIELDS = ["public_id", "version", "details_version", "gate_approved_fingerprint", "gate_approved_at",
                    "holds_released_shown", "expires_at", "confirmation_sent_at", "confirmation_lease_until",
                    "success_url", "cancel_url", "webhook_url", "metadata", "updated_at"]


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ORDER_ID = re.compile(r"cs_[A-Za-z0-9]{16,}", re.IGNORECASE)
# What people type for a code they hold: any case, with or without dashes or spaces.
SPACING = re.compile(r"[\s\-–]+")
SHORT_REFERENCE = re.compile(r"[A-Z0-9]{6}")


def as_ticket_code(compact: str) -> str | None:
    """``abcdefghjkmn`` → ``ABCD-EFGH-JKMN`` when it can be a ticket code, else None."""
    if len(compact) == 12 and all(char in TICKET_CODE_ALPHABET for char in compact):
        return f"{compact[:4]}-{compact[4:8]}-{compact[8:]}"
    return None


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(OrderActionsMixin, ReadOnlyTenantAdmin):
    title = _("Orders")
    list_display = ["reference", "status_shown", "attendee", "email", "event", "amount", "paid",
                    "created", "attention"]
    list_display_links = ["reference"]
    list_select_related = ["event", "organization"]
    # Nothing on a page is computed over all the orders (a year holds tens of thousands per
    # organization): the filters' choices are fixed or read from the events table, the time
    # filter is a choice of periods (no date hierarchy: its bounds and distinct dates were two
    # aggregates over every order), and a narrowed list counts its own rows only, not all the
    # orders again (``show_full_result_count``). Measured: bench/bench_scale.py.
    list_filter = [("event", EventFilter), "status", ProviderFilter, AttentionFilter, SoldFilter,
                   MoneyFilter, RefundedFilter, ("created_at", CreatedFilter)]
    show_full_result_count = False
    # A page is rendered row by row (a checkbox widget, money and a time on the organization's
    # clock per row): fifty rows read at a glance and render in half the time of Django's 100.
    list_per_page = 50
    # Anything not recognised as a whole code, email or reference is searched by part, in these
    # columns, with the term folded as ``search_name`` is (accents dropped, case folded). Ticket
    # codes are matched whole only (``get_search_results``): no join to the tickets here.
    search_fields = ["public_id", "customer_email", "search_name"]
    search_help_text = _("Email, name (with or without accents), ticket code, or order reference "
                                    "(UGH-7V2 or cs_…)")
    actions = [erase_selected_attendees]
    fieldsets = [(_("Technical details"), {"classes": ["collapse"], "fields": TECHNICAL_FIELDS})]
    readonly_fields = TECHNICAL_FIELDS
    change_list_template = "admin/checkout/checkoutsession/change_list.html"
    change_form_template = "admin/checkout/checkoutsession/change_form.html"

    def get_search_results(self, request, queryset, search_term):
        """What people hold is looked up whole, through an index, so an order is found at once
        in a year of orders: a ticket code (any case, dashes or not), an email (any case), the
        reference the attendee was given ("UGH-7V2", "ugh7v2") or the order's id. Anything else
        — a name with or without accents, part of an email — is searched by part."""
        term = search_term.strip()
        compact = SPACING.sub("", term).upper()
        if EMAIL.fullmatch(term):
            return queryset.filter(customer_email__iexact=term), False
        # A term with a dash or a digit is a code or a reference; a word of letters only may be a
        # name too ("Marina" has a reference's six letters): it is a code only if one matches.
        looks_like_a_code = "-" in term or any(char.isdigit() for char in compact)
        if (code := as_ticket_code(compact)) is not None:
            by_code = queryset.filter(tickets__code=code)
            if looks_like_a_code or by_code.exists():
                return by_code, False
        if ORDER_ID.fullmatch(term):
            exact = queryset.filter(public_id=term)
            return (exact if exact.exists() else queryset.filter(public_id__iexact=term)), False
        if SHORT_REFERENCE.fullmatch(compact):
            by_reference = queryset.filter(reference_key=compact)
            if looks_like_a_code or by_reference.exists():
                return by_reference, False
        return super().get_search_results(request, queryset, search_key(term))

    def changelist_view(self, request, extra_context=None):
        """The list, with what its orders add up to (count, received, refunded, net) under it
        once narrowed: the overview's figures, checkable against the list their links open. (On the
        organization's clock, as every page of the back office: ``IEventsAdminSite.admin_view``.)"""
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        # Once narrowed (a filter or a search, as every overview link is): the whole list's
        # totals would be a sum over every order of the year on every visit.
        if changelist is not None and (changelist.get_filters_params() or changelist.query):
            response.context_data["order_totals"] = order_totals(changelist.queryset)
        return response

    def has_erase_permission(self, request):
        """The erase action: for a member whose role may erase in some organization (the
        action then skips the orders of any other)."""
        return request.user.is_superuser or any(
            roles.allows(role, roles.ERASE_ATTENDEE) for role in roles.roles_of(request.user).values())

    @admin.display(description=_("Order"), ordering="public_id")
    def reference(self, session):
        # The reference the attendee was given, and the order's id under it.
        return format_html('{}<br><small class="order-id">{}</small>', order_reference(session.public_id),
                           session.public_id)

    @admin.display(description=_("Attendee"), ordering="customer_name")
    def attendee(self, session):
        return session.customer_name or "—"

    @admin.display(description=_("Email"), ordering="customer_email")
    def email(self, session):
        return session.customer_email

    @admin.display(description=_("Created"), ordering="created_at")
    def created(self, session):
        return local_text(session.created_at, session.organization.timezone)

    @admin.display(description=_("Status"), ordering="status")
    def status_shown(self, session):
        # Status(...).label: the enum's own label, not get_status_display's dict of every choice per row.
        return format_html('<span class="order-status {}">{}</span>', session.status, Status(session.status).label)

    @admin.display(description=_("Amount"), ordering="amount_total")
    def amount(self, session):
        return format_money(session.amount_total, session.currency)

    @admin.display(description=_("Paid"), ordering="amount_paid")
    def paid(self, session):
        return format_money(session.amount_paid, session.currency) if session.amount_paid else "—"

    @admin.display(description=_("Attention"))
    def attention(self, session):
        if not session.needs_attention:
            return ""
        return format_html('<span class="order-status needs-attention" title="{}">{}</span>',
                           session.needs_attention, gettext("Needs attention"))

    @admin.display(description=_("Holds released"))
    def holds_released_shown(self, session):
        return gettext("yes") if session.holds_released else gettext("no")

    def get_urls(self):
        export = path("export/", self.admin_site.admin_view(self.export_csv), name="checkout_checkoutsession_export")
        xlsx = path("export.xlsx", self.admin_site.admin_view(self.export_xlsx),
                    name="checkout_checkoutsession_export_xlsx")
        return [export, xlsx, *super().get_urls()]

    def export_xlsx(self, request):
        """The same rows as the CSV, as an Excel workbook (numbers, times and text typed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        orders = self.get_changelist_instance(request).queryset
        workbook = xlsx_file(ticket_rows(orders, export_questions(orders)))
        return FileResponse(workbook, as_attachment=True, filename=f"orders-{timezone.now():%Y%m%d-%H%M}.xlsx",
                            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    def export_csv(self, request):
        """The orders the list shows (its filters and search), one CSV row per ticket, streamed,
        as a spreadsheet in the admin's language reads it (``checkout.admin_export``)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        orders = self.get_changelist_instance(request).queryset
        lines = csv_lines(ticket_rows(orders, export_questions(orders)), dialect_for())
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="orders-{timezone.now():%Y%m%d-%H%M}.csv"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        session = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if session is None:
            return super().change_view(request, object_id, form_url, context)
        context.update(order_page(session))
        context["title"] = gettext("Order %(order)s") % {"order": session.public_id}
        # The order's times on its organization's clock, each with the zone's abbreviation.
        return in_zone(session.organization.timezone, super().change_view, request, object_id, form_url, context)


def order_page(session: CheckoutSession) -> dict:
    """What an order's page shows, read in a handful of queries."""
    line_items = list(session.line_items.select_related("ticket_type"))
    line_prices = {item.ticket_type_id: item.unit_amount for item in line_items}  # what each ticket cost
    tickets = [{"code": t.code, "type": t.ticket_type.name, "void": t.voided_at is not None, "holder": t.holder_name,
                "price": format_money(line_prices.get(t.ticket_type_id, t.ticket_type.price), session.currency)}
               for t in session.tickets.select_related("ticket_type")]
    lines = [{"type": item.ticket_type.name, "quantity": item.quantity,
              "price": format_money(item.unit_price, session.currency),
              "discount": format_money(item.discount, session.currency) if item.discount else "—",
              "total": format_money(item.amount, session.currency)}
             for item in line_items]
    answers = [(a.question.text, a.value) for a in session.answers.select_related("question").order_by(
        "question__position", "question_id")]
    payments = [{"payment": p, "provider": p.get_provider_display(), "amount": format_money(p.amount, p.currency),
                 "received": format_money(p.amount_received, p.currency),
                 "link": PROVIDER_CLASSES[p.provider].dashboard_link(p.provider_reference),
                 "instructions": readable_instructions(p), "why": p.failure_reason if p.status == p.Status.FAILED else ""}
                for p in session.payments.order_by("id")]
    return {
        "order": session,
        "order_short_reference": order_reference(session.public_id),
        "order_amount": format_money(session.amount_total, session.currency),
        "order_discount": format_money(session.discount_total, session.currency) if session.promo_code_text else "",
        "order_paid": format_money(session.amount_paid, session.currency),
        "order_provider": dict(provider_choices()).get(session.provider, session.provider),
        "order_refunded": format_money(session.amount_refunded, session.currency) if session.amount_refunded else "",
        "order_tickets": tickets, "order_lines": lines, "order_answers": answers, "order_payments": payments,
        "order_history": history(session),
    }


from . import promo_admin  # noqa: E402,F401  (registers the promo codes' admin)
