from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ievents.admin_base import ReadOnlyTenantAdmin, TenantScopedAdmin
from ievents.admin_time import local_text
from ievents.money import format_money

from .forms import IntegrationSettingsForm
from .models import IntegrationSettings, Payment
from .registry import PROVIDER_CLASSES, get_provider


@admin.register(IntegrationSettings)
class IntegrationSettingsAdmin(TenantScopedAdmin):
    """Per-organization provider settings. Secrets are write-only; the webhook URL is shown."""

    form = IntegrationSettingsForm
    title = _("Payments")
    list_display = ["organization", "provider", "enabled", "mode", "has_webhook_secret", "webhook_address"]
    list_filter = ["provider", "enabled"]
    readonly_fields = ["webhook_address"]

    def get_fieldsets(self, request, obj=None):
        """A saved integration shows its provider's fields only. A new one shows each
        provider's in its own section; a little script (``admin_ievents.js``) hides all but
        the chosen provider's, and without it the sections still say whose they are."""
        providers = [PROVIDER_CLASSES[obj.provider]] if obj else PROVIDER_CLASSES.values()
        sections = [(None, {"fields": ["organization", "provider", "enabled"]})]
        for provider in providers:
            if provider.credential_fields:
                sections.append((gettext("%(provider)s credentials") % {"provider": provider.label}, {
                    "fields": [f"cred_{name}" for name in provider.credential_fields],
                    "classes": ["provider-fields", f"provider-{provider.name}"],
                    "description": gettext("Stored encrypted; never shown again in full.")}))
        webhook_fields = ["webhook_secret_input", "clear_webhook_secret"]
        if obj is None or PROVIDER_CLASSES[obj.provider].has_webhook_url:
            webhook_fields.append("webhook_address")
        sections.append((gettext("Notifications from the provider"), {"fields": webhook_fields}))
        return sections

    @admin.display(description=_("Mode"))
    def mode(self, obj):
        """Test or live, as the credentials say (a Stripe sk_test_ key, Easypay's test API, the sandbox)."""
        testing = get_provider(obj.provider, obj.organization).test_mode() if obj.provider in PROVIDER_CLASSES else None
        if testing is None:
            return "—"
        return format_html('<span class="order-status provider-mode-{}">{}</span>', "test" if testing else "live",
                           gettext("Test") if testing else gettext("Live"))

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        provider = PROVIDER_CLASSES.get(obj.provider)
        if provider is not None and provider.has_webhook_url and not (
                obj.webhook_secret or provider.environment_config().webhook_secret):
            messages.warning(request, gettext(
                "%(provider)s has no webhook signing secret: its notifications cannot be trusted, so payments are "
                "confirmed only when the attendee comes back from %(provider)s. An attendee who closes the page "
                "after paying gets no tickets until you act. Add the secret from %(provider)s's dashboard.")
                % {"provider": provider.label})

    @admin.display(description=_("Webhook secret"), boolean=True)
    def has_webhook_secret(self, obj):
        return bool(obj.webhook_secret)

    @admin.display(description=_("Webhook URL for the provider's dashboard"))
    def webhook_address(self, obj):
        if not obj or not obj.pk:
            return gettext("Shown once saved.")
        provider = PROVIDER_CLASSES[obj.provider]
        return format_html("<code>{}</code>", provider.webhook_url(obj.organization)) if provider.has_webhook_url else "—"

    def get_readonly_fields(self, request, obj=None):
        # Changing provider or organization would make stored credentials mean something else.
        return ["webhook_address"] + (["organization", "provider"] if obj else [])


# What the attendee was told, under the names the status page uses; other keys are ours.
INSTRUCTION_LABELS = {"method": _("Method"), "entity": _("Entity"), "reference": _("Reference"), "deadline": _("Pay by"),
                      "phone": _("Phone"), "order_id": _("Order ID")}


def readable_instructions(payment: Payment) -> list[tuple[str, str]]:
    """The instructions as (label, value) pairs, for people rather than JSON."""
    shown = []
    for key, value in (payment.instructions or {}).items():
        if key in INSTRUCTION_LABELS and value not in (None, ""):
            shown.append((INSTRUCTION_LABELS[key], str(value)))
    return shown


@admin.register(Payment)
class PaymentAdmin(ReadOnlyTenantAdmin):
    """Payments are financial records: read-only, never deleted."""
    title = _("Payment attempts")

    tenant_path = "session__organization"
    list_display = ["public_id", "order", "provider", "method", "status", "amount_shown", "received_shown",
                    "created"]
    list_filter = ["provider", "status"]
    list_select_related = ["session__organization"]
    search_fields = ["public_id", "provider_reference", "session__public_id"]
    fields = ["public_id", "order", "provider", "method", "status", "amount_shown", "received_shown",
              "reference_shown", "instructions_shown", "redirect_url", "created_at", "updated_at"]
    readonly_fields = fields

    @admin.display(description=_("Created"), ordering="created_at")
    def created(self, payment):
        # On the organization's clock, as the orders list.
        return local_text(payment.created_at, payment.session.organization.timezone)

    @admin.display(description=_("Order"), ordering="session__public_id")
    def order(self, payment):
        url = reverse("admin:checkout_checkoutsession_change", args=[payment.session_id])
        return format_html('<a href="{}">{}</a>', url, payment.session.public_id)

    @admin.display(description=_("Amount"), ordering="amount")
    def amount_shown(self, payment):
        return format_money(payment.amount, payment.currency)

    @admin.display(description=_("Received"), ordering="amount_received")
    def received_shown(self, payment):
        return format_money(payment.amount_received, payment.currency)

    @admin.display(description=_("Provider reference"))
    def reference_shown(self, payment):
        link = PROVIDER_CLASSES[payment.provider].dashboard_link(payment.provider_reference)
        if link:
            return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', link, payment.provider_reference)
        return payment.provider_reference or "—"

    @admin.display(description=_("Instructions"))
    def instructions_shown(self, payment):
        pairs = readable_instructions(payment)
        if not pairs:
            return "—"
        return format_html('<dl class="instructions">{}</dl>',
                           format_html_join("", "<dt>{}</dt><dd>{}</dd>", pairs))
