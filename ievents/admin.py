"""Admin for organizers. Each organizer sees only their own organization's objects."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from .crypto import mask
from .models import ApiKey, Event, Membership, Organization, Question, TicketType, new_signing_secret


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


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin):
    tenant_path = "pk"
    list_display = ["name", "slug", "public_id"]
    readonly_fields = ["public_id", "signing_secret_shown"]
    exclude = ["signing_secret"]
    actions = ["rotate_signing_secret"]

    @admin.display(description="Signing secret")
    def signing_secret_shown(self, obj):
        # Per-session webhook_url notifications are signed with this; it is shown in full
        # only once, when the "Rotate signing secret" action makes a new one.
        return mask(obj.signing_secret) if obj.pk else "—"

    @admin.action(description="Rotate signing secret (the new one is shown once)")
    def rotate_signing_secret(self, request, queryset):
        for organization in queryset:
            organization.signing_secret = new_signing_secret()
            organization.save(update_fields=["signing_secret"])
            messages.warning(request, f"New signing secret for {organization.name} (shown once, copy it now): "
                                      f"{organization.signing_secret}")

    def get_queryset(self, request):
        qs = admin.ModelAdmin.get_queryset(self, request)
        return qs if request.user.is_superuser else qs.filter(pk__in=user_organization_ids(request.user))

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        # Deleting an organization takes every event, sale and log with it: operators only.
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Superusers only. Memberships decide what every tenant filter shows: an organizer who
    could edit one could move themselves into another organization."""

    list_display = ["user", "organization", "role"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class TicketTypeFormSet(forms.BaseInlineFormSet):
    """A quantity below what is held or sold is a form error (the ``no_oversell`` check
    constraint made it a server error)."""

    def clean(self):
        super().clean()
        lowered = {form.instance.pk: form for form in self.forms
                   if form.instance.pk and "quantity" in form.changed_data and not form.cleaned_data.get("DELETE")
                   and form.cleaned_data.get("quantity") is not None}
        # Locked (inside the admin's transaction, in primary-key order as checkouts lock them)
        # so no checkout can hold more between this check and the save.
        reserved = TicketType.objects.select_for_update().filter(pk__in=lowered).order_by("pk")
        for pk, held in reserved.values_list("pk", "reserved"):
            form = lowered[pk]
            if form.cleaned_data["quantity"] < held:
                form.add_error("quantity", f"{held} ticket(s) are held or sold: the quantity cannot be lower.")


class TicketTypeInline(admin.TabularInline):
    model = TicketType
    formset = TicketTypeFormSet
    extra = 0
    fields = ["name", "price", "quantity", "reserved", "max_per_order", "sales_start", "sales_end", "position"]
    readonly_fields = ["reserved"]


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0


class EventAdminForm(forms.ModelForm):
    """The event, with its payment providers as tick boxes rather than a JSON list."""

    payment_providers = forms.MultipleChoiceField(
        choices=[], required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Offered to attendees, among those enabled in the organization's integration settings. "
                  "None ticked: every enabled one.",
    )

    class Meta:
        model = Event
        fields = ["organization", "name", "description", "venue", "starts_at", "timezone", "currency", "published",
                  "payment_providers"]

    def __init__(self, *args, **kwargs):
        from payments.models import Provider  # payments' models import this app's

        super().__init__(*args, **kwargs)
        self.fields["payment_providers"].choices = Provider.choices

    def clean_payment_providers(self) -> list[str]:
        return list(self.cleaned_data["payment_providers"])


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    form = EventAdminForm
    list_display = ["name", "organization", "starts_at", "published", "public_link"]
    list_filter = ["published"]
    search_fields = ["name"]
    readonly_fields = ["public_id", "public_link"]
    inlines = [TicketTypeInline, QuestionInline]
    actions = ["send_gate_test_request", "rotate_gate_secret"]

    # The pre-payment gate's admin lives in webhooks.admin.gate, which imports this module:
    # imported when used, not at the top.
    def get_inlines(self, request, obj):
        from webhooks.admin.gate import GateSettingsInline

        return [*self.inlines, GateSettingsInline]

    def save_formset(self, request, form, formset, change):
        from webhooks.admin.gate import announce_new_gate_secret

        super().save_formset(request, form, formset, change)
        announce_new_gate_secret(request, formset)

    @admin.action(description="Send a test request to the pre-payment gate")
    def send_gate_test_request(self, request, queryset):
        from webhooks.admin.gate import send_gate_test_request

        send_gate_test_request(self, request, queryset)

    @admin.action(description="Rotate the gate's signing secret (shows the new one once)")
    def rotate_gate_secret(self, request, queryset):
        from webhooks.admin.gate import rotate_gate_secret

        rotate_gate_secret(self, request, queryset)

    @admin.display(description="Public page")
    def public_link(self, obj):
        if not obj.pk:
            return "—"
        return format_html('<a href="{}" target="_blank">{}</a>', obj.get_absolute_url(), obj.get_absolute_url())


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ["prefix", "name", "organization", "created_at", "last_used_at", "revoked_at"]
    fields = ["organization", "name", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        row, key = ApiKey.issue(obj.organization or self._default_org(request), name=obj.name)
        obj.pk = row.pk
        messages.warning(request, f"Your new API key (shown once, copy it now): {key}")

    def _default_org(self, request):
        return Organization.objects.filter(pk__in=user_organization_ids(request.user)).first()
