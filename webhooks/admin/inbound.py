"""Admin: the inbound provider webhook log, read-only, with a "Reprocess" action."""

from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ievents.admin_base import TenantScopedAdmin

from ..inbound import reprocess
from ..models import InboundWebhook


@admin.register(InboundWebhook)
class InboundWebhookAdmin(TenantScopedAdmin):
    """Every delivery a provider made, verified or not. Organizers see their own; deliveries
    to org ``_`` (the platform's environment secrets) only superusers see."""
    title = _("Messages from payment providers")

    list_display = ["received_at", "provider", "organization", "type", "event_id", "verified", "outcome", "duplicates",
                    "session", "short_error"]
    list_filter = ["provider", "outcome", "verified"]
    search_fields = ["event_id", "session__public_id"]
    list_select_related = ["organization", "session"]
    actions = ["reprocess_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the log is evidence

    @admin.display(description=_("Error"))
    def short_error(self, obj):
        return obj.error[:80]

    @admin.action(description=_("Reprocess (parse again and apply; safe to repeat)"), permissions=["change"])
    def reprocess_selected(self, request, queryset):
        results: dict[str, int] = {}
        for row in queryset.select_related("organization"):
            outcome = reprocess(row).outcome
            results[outcome] = results.get(outcome, 0) + 1
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(results.items()))
        messages.info(request, gettext("Reprocessed %(count)d: %(summary)s.") % {"count": sum(results.values()),
                                                                              "summary": summary})
