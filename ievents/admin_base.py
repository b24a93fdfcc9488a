"""The tenant-scoped bases every organizer-facing admin builds on.

An organizer sees and acts on their own organization's rows only; these classes filter
querysets and foreign-key choices by membership. They live apart from the ModelAdmins so
that every app's admin imports them without importing another app's admin.
"""

from django.contrib import admin

from .models import Membership, Organization


def user_organization_ids(user) -> list[int]:
    return list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))


class TenantScopedAdmin(admin.ModelAdmin):
    """Base for every organizer-facing admin: filters rows and choices by membership.

    ``tenant_path`` is the lookup from the model to its organization.
    """

    tenant_path = "organization"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.tenant_path}__in": user_organization_ids(request.user)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if request.user.is_superuser or field is None:
            return field
        model = db_field.related_model
        if model is Organization:
            field.queryset = field.queryset.filter(pk__in=user_organization_ids(request.user))
        elif hasattr(model, "organization"):
            field.queryset = field.queryset.filter(organization__in=user_organization_ids(request.user))
        return field

    def save_model(self, request, obj, form, change):
        if not change and self.tenant_path == "organization" and not getattr(obj, "organization_id", None):
            ids = user_organization_ids(request.user)
            if ids:
                obj.organization_id = ids[0]
        super().save_model(request, obj, form, change)


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    """A record (history, logs, what was sent): seen and acted on, never edited or deleted here.

    Without change permission the admin shows the page without a misleading Save button.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TenantScopedInline:
    """Mixin for inlines: limit foreign-key choices to the organizer's organizations."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if request.user.is_superuser or field is None:
            return field
        if hasattr(db_field.related_model, "organization"):
            field.queryset = field.queryset.filter(organization__in=user_organization_ids(request.user))
        return field
