"""Checkout sessions for organizers: read-only, with their full history."""

from django.contrib import admin

from ievents.admin import ReadOnlyInline, ReadOnlyTenantAdmin

from .admin_actions import OrderActionsMixin
from .models import Answer, CheckoutSession, LineItem, Ticket, Transition


class LineItemInline(ReadOnlyInline):
    model = LineItem
    fields = ["ticket_type", "quantity", "unit_price"]
    readonly_fields = fields


class AnswerInline(ReadOnlyInline):
    model = Answer
    fields = ["question", "value"]
    readonly_fields = fields


class TicketInline(ReadOnlyInline):
    model = Ticket
    fields = ["code", "ticket_type", "created_at", "voided_at"]
    readonly_fields = fields


class TransitionInline(ReadOnlyInline):
    model = Transition
    fields = ["at", "from_status", "to_status", "trigger", "source", "detail"]
    readonly_fields = fields
    verbose_name_plural = "transition history"


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(OrderActionsMixin, ReadOnlyTenantAdmin):
    list_display = ["public_id", "event", "status", "customer_email", "amount_total", "currency", "created_at",
                    "needs_attention"]
    # RelatedOnly: the plain filter would offer every organization's events by name.
    list_filter = ["status", ("event", admin.RelatedOnlyFieldListFilter), "provider"]
    search_fields = ["public_id", "customer_email", "customer_name"]
    date_hierarchy = "created_at"
    inlines = [LineItemInline, AnswerInline, TicketInline, TransitionInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
