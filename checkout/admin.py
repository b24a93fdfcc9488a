"""Checkout sessions for organizers: read-only, with their full history."""

from django.contrib import admin

from ievents.admin import TenantScopedAdmin

from .models import Answer, CheckoutSession, LineItem, Ticket, Transition


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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
    fields = ["code", "ticket_type", "created_at"]
    readonly_fields = fields


class TransitionInline(ReadOnlyInline):
    model = Transition
    fields = ["at", "from_status", "to_status", "trigger", "source", "detail"]
    readonly_fields = fields
    verbose_name_plural = "transition history"


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(TenantScopedAdmin):
    list_display = ["public_id", "event", "status", "customer_email", "amount_total", "currency", "created_at",
                    "needs_attention"]
    # RelatedOnly: the plain filter would offer every organization's events by name.
    list_filter = ["status", ("event", admin.RelatedOnlyFieldListFilter), "provider"]
    search_fields = ["public_id", "customer_email", "customer_name"]
    date_hierarchy = "created_at"
    inlines = [LineItemInline, AnswerInline, TicketInline, TransitionInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Read-only: a "Save" button on a page where nothing can be changed misleads.
        return False

    def has_delete_permission(self, request, obj=None):
        return False
