from django.contrib import admin

from ievents.admin import TenantScopedAdmin

from .models import IntegrationSettings, Payment


@admin.register(IntegrationSettings)
class IntegrationSettingsAdmin(TenantScopedAdmin):
    list_display = ["organization", "provider", "enabled"]
    list_filter = ["provider", "enabled"]


@admin.register(Payment)
class PaymentAdmin(TenantScopedAdmin):
    tenant_path = "session__organization"
    list_display = ["public_id", "session", "provider", "method", "status", "amount", "amount_received", "created_at"]
    list_filter = ["provider", "status"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False
