"""Admin: webhook endpoints with their health, the events we sent, every delivery and attempt.

Actions are thin: they call ``webhooks.delivery`` and report. Secrets are never shown in
full, except a new one once, right after “Rotate secret”, so it can be copied.
Everything is tenant-scoped: an organizer sees and acts on their organization's rows only.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ievents.admin_base import ReadOnlyInline, ReadOnlyTenantAdmin, TenantScopedAdmin, show_secret_once, user_organization_ids
from ievents.crypto import mask

from .. import delivery as service
from .. import tasks
from ..models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from ..outbox import SESSION_EVENT_TYPES
from ..signing import rotate_secret
from ..targets import TargetRefused, check_target_url

HEALTH_WINDOW = timedelta(days=7)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=2000, assume_scheme="https",
                         widget=forms.URLInput(attrs={"class": "vURLField"}))
    enabled_events = forms.MultipleChoiceField(
        choices=[("*", "Every event (also types added later)")] + [(t, t) for t in SESSION_EVENT_TYPES],
        # "radiolist": the admin's own class for option lists, so labels are not squeezed
        # into the 160 px label column (event names wrapped mid-word without it).
        widget=forms.CheckboxSelectMultiple(attrs={"class": "radiolist"}),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "enabled_events"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            check_target_url(url)
        except TargetRefused as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url

    def clean_enabled_events(self):
        events = self.cleaned_data["enabled_events"]
        return ["*"] if "*" in events else sorted(events)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    title = _("Your systems' notification addresses")
    form = WebhookEndpointForm
    list_display = ["url", "organization", "enabled", "subscribed", "success_rate", "last_delivery", "disabled_reason"]
    list_filter = ["enabled"]
    search_fields = ["url", "description", "public_id"]
    readonly_fields = ["public_id", "enabled", "disabled_reason", "failing_since", "secret_hint", "health"]
    actions = ["send_test_event", "rotate_endpoint_secret", "enable_endpoints", "disable_endpoints"]

    def get_fields(self, request, obj=None):
        fields = ["organization", "url", "description", "enabled_events"]
        return fields + (self.readonly_fields if obj else [])

    def get_queryset(self, request):
        since = timezone.now() - HEALTH_WINDOW
        recent = Q(deliveries__attempts__started_at__gte=since)
        return super().get_queryset(request).select_related("organization").annotate(
            recent_attempts=Count("deliveries__attempts", filter=recent),
            recent_ok=Count("deliveries__attempts", filter=recent & Q(deliveries__attempts__status_code__gte=200,
                                                                      deliveries__attempts__status_code__lt=300)),
            last_attempt_at=Max("deliveries__attempts__started_at"),
        )

    @admin.display(description=_("Events"))
    def subscribed(self, endpoint):
        if "*" in endpoint.enabled_events:
            return gettext("all")
        count = len(endpoint.enabled_events)
        return ngettext("%(count)d type", "%(count)d types", count) % {"count": count}

    @admin.display(description=_("Success (7 days)"))
    def success_rate(self, endpoint):
        if not getattr(endpoint, "recent_attempts", 0):
            return "—"
        return gettext("%(percent)d%% of %(count)d") % {"percent": round(100 * endpoint.recent_ok / endpoint.recent_attempts),
                                                        "count": endpoint.recent_attempts}

    @admin.display(description=_("Last delivery"), ordering="last_attempt_at")
    def last_delivery(self, endpoint):
        return getattr(endpoint, "last_attempt_at", None) or gettext("never")

    @admin.display(description=_("Signing secret"))
    def secret_hint(self, endpoint):
        hint = mask(endpoint.secret)
        if endpoint.previous_secret and endpoint.previous_secret_expires_at:
            hint += " " + gettext("(the previous one also signs until %(until)s)") % {
                "until": formats.localize(timezone.localtime(endpoint.previous_secret_expires_at))}
        return hint

    @admin.display(description=_("Health"))
    def health(self, endpoint):
        url = reverse("admin:webhooks_delivery_changelist") + f"?endpoint={endpoint.pk}"
        failing = (gettext("failing since %(since)s") % {"since": formats.localize(timezone.localtime(
            endpoint.failing_since))} if endpoint.failing_since else gettext("no failure since its last success"))
        last = self.last_delivery(endpoint)
        last = formats.localize(timezone.localtime(last)) if hasattr(last, "tzinfo") else last
        return format_html('{} · {} · {} {} · <a href="{}">{}</a>', self.success_rate(endpoint), failing,
                           gettext("last delivery"), last, url, gettext("deliveries"))

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change and self.has_see_secrets_permission(request, obj):
            show_secret_once(request, gettext("The signing secret of %(url)s") % {"url": obj.url}, obj.secret)

    @admin.action(description=_("Send test event"), permissions=["change"])
    def send_test_event(self, request, queryset):
        for endpoint in queryset:
            delivery, outcome = service.send_test_event(endpoint)
            if delivery.status == Delivery.Status.SUCCEEDED:
                self.message_user(request, gettext("%(url)s: answered %(status)s.") % {
                    "url": endpoint.url, "status": outcome.status_code}, messages.SUCCESS)
            else:
                self.message_user(request, gettext("%(url)s: failed (%(error)s).") % {
                    "url": endpoint.url, "error": outcome.error}, messages.ERROR)

    @admin.action(description=_("Rotate secret"), permissions=["see_secrets"])
    def rotate_endpoint_secret(self, request, queryset):
        for endpoint in queryset:
            secret = rotate_secret(endpoint)
            show_secret_once(request, gettext("New secret for %(url)s (the old one keeps signing for 24 hours)") % {
                "url": endpoint.url}, secret)

    @admin.action(description=_("Enable"), permissions=["change"])
    def enable_endpoints(self, request, queryset):
        for endpoint in queryset:
            service.enable_endpoint(endpoint)
        self.message_user(request, ngettext(
            "Enabled %(count)d address. Retry its failed deliveries if needed.",
            "Enabled %(count)d addresses. Retry their failed deliveries if needed.", len(queryset))
            % {"count": len(queryset)})

    @admin.action(description=_("Disable"), permissions=["change"])
    def disable_endpoints(self, request, queryset):
        for endpoint in queryset.filter(enabled=True):
            service.disable_endpoint(endpoint, f"Disabled in the admin by {request.user}.", notify=False)


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = readonly_fields = ["number", "started_at", "duration_ms", "status_code", "error", "response_body"]


class EndpointFilter(admin.SimpleListFilter):
    """By endpoint, offering only the organizer's own endpoints."""

    title = _("endpoint")
    parameter_name = "endpoint"

    def lookups(self, request, model_admin):
        endpoints = WebhookEndpoint.objects.all()
        if not request.user.is_superuser:
            endpoints = endpoints.filter(organization__in=user_organization_ids(request.user))
        return [(str(e.pk), e.url) for e in endpoints] + [("none", "A session's own webhook_url")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(endpoint__isnull=True)
        if self.value() and self.value().isdigit():
            return queryset.filter(endpoint_id=int(self.value()))
        return queryset


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantAdmin):
    title = _("Notifications delivered")
    tenant_path = "event__organization"
    # What the organizer looks for first (type, status, last answer) comes before the long
    # target URL, which pushed the status out of view at a laptop's width.
    list_display = ["public_id", "event_type", "status", "last_status_code", "attempts_count", "next_attempt_at",
                    "target_url", "updated_at"]
    # RelatedOnly: events (of the organizer's sessions) that have deliveries, and no one else's.
    list_filter = ["status", "event__type", EndpointFilter, ("event__session__event", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["public_id", "event__public_id", "target_url", "event__session__public_id"]
    fields = ["public_id", "event_link", "endpoint", "target_url", "status", "attempts_count", "next_attempt_at",
              "lease_until", "last_status_code", "last_error", "created_at", "updated_at"]
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event", "endpoint")

    @admin.display(description=_("Event"), ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description=_("Event"))
    def event_link(self, delivery):
        url = reverse("admin:webhooks_outboxevent_change", args=[delivery.event_id])
        return format_html('<a href="{}">{} {}</a>', url, delivery.event.type, delivery.event.public_id)

    @admin.action(description=_("Retry now"), permissions=["act"])
    def retry_now(self, request, queryset):
        retried = 0
        for delivery in queryset:
            try:
                tasks.retry_delivery(delivery.pk)
                retried += 1
            except service.NotRetryable as exc:
                self.message_user(request, f"{delivery.public_id}: {exc}", messages.WARNING)
        if retried:
            self.message_user(request, f"{retried} deliver{'y' if retried == 1 else 'ies'} queued to be sent now.")


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    show_change_link = True
    fields = readonly_fields = ["target_url", "status", "attempts_count", "last_status_code", "next_attempt_at"]


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyTenantAdmin):
    title = _("Notifications sent to your systems")
    list_display = ["public_id", "type", "session", "organization", "created_at"]
    list_filter = ["type"]
    search_fields = ["public_id", "session__public_id"]
    fields = readonly_fields = ["public_id", "type", "organization", "session", "created_at", "payload"]
    inlines = [DeliveryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("session", "organization")
