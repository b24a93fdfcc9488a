from django.contrib import admin
from django.utils.html import format_html

from ievents.admin_base import TenantScopedAdmin

from .forms import ALL_CREDENTIALS, CREDENTIAL_FIELDS, IntegrationSettingsForm, webhook_url
from .models import IntegrationSettings, Payment


@admin.register(IntegrationSettings)
class IntegrationSettingsAdmin(TenantScopedAdmin):
    """Per-organization provider settings. Secrets are write-only; the webhook URL is shown."""

    form = IntegrationSettingsForm
    title = "Payment providers"
    list_display = ["organization", "provider", "enabled", "has_webhook_secret", "webhook_address"]
    list_filter = ["provider", "enabled"]
    readonly_fields = ["webhook_address"]

    def get_fieldsets(self, request, obj=None):
        provider = obj.provider if obj else None
        names = CREDENTIAL_FIELDS[provider] if provider in CREDENTIAL_FIELDS else ALL_CREDENTIALS
        return [
            (None, {"fields": ["organization", "provider", "enabled"]}),
            ("Credentials", {"fields": [f"cred_{name}" for name in names],
                             "description": "Stored encrypted; never shown again in full."}),
            ("Webhooks", {"fields": ["webhook_secret_input", "clear_webhook_secret", "webhook_address"]}),
        ]

    @admin.display(description="Webhook secret", boolean=True)
    def has_webhook_secret(self, obj):
        return bool(obj.webhook_secret)

    @admin.display(description="Webhook URL for the provider's dashboard")
    def webhook_address(self, obj):
        if not obj or not obj.pk:
            return "Shown once saved."
        return format_html("<code>{}</code>", webhook_url(obj.provider, obj.organization))

    def get_readonly_fields(self, request, obj=None):
        # Changing provider or organization would make stored credentials mean something else.
        return ["webhook_address"] + (["organization", "provider"] if obj else [])


@admin.register(Payment)
class PaymentAdmin(TenantScopedAdmin):
    tenant_path = "session__organization"
    list_display = ["public_id", "session", "provider", "method", "status", "amount", "amount_received", "created_at"]
    list_filter = ["provider", "status"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

