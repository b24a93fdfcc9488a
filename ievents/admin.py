"""Admin for organizers. Each organizer sees only their own organization's objects."""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import path
from django.utils.html import format_html

from webhooks.admin.gate import (
    GateSettingsInline,
    announce_new_gate_secret,
    gate_test_page,
    rotate_gate_secret,
    send_gate_test_request,
    warn_if_gate_off,
)

from .admin_base import TenantScopedAdmin, TenantScopedInline, request_roles, show_secret_once
from .admin_money import MoneyField, MoneyFormMixin
from .crypto import mask
from .models import (
    ApiKey,
    Event,
    HolderNames,
    InvoiceDetails,
    Membership,
    Organization,
    Question,
    Role,
    TicketType,
    new_signing_secret,
)


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [form.cleaned_data.get("role", form.instance.role) for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if Role.OWNER not in kept:
            raise forms.ValidationError("An organization keeps at least one owner.")


class MembershipInline(admin.TabularInline):
    """The organization's members and their roles. Owners change a role or remove a member;
    giving someone a login and adding them is for the platform's operators (a list of every
    user to choose from would show other organizations' people)."""

    model = Membership
    formset = MembershipFormSet
    extra = 0
    fields = ["user", "role"]
    verbose_name_plural = "members"

    def _is_owner(self, request, obj) -> bool:
        return request.user.is_superuser or (obj is not None and request_roles(request).get(obj.pk) == Role.OWNER)

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["user"]

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return self._is_owner(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._is_owner(request, obj)


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin):
    tenant_path = "pk"
    inlines = [MembershipInline]
    list_display = ["name", "slug", "public_id"]
    readonly_fields = ["public_id", "signing_secret_shown"]
    exclude = ["signing_secret"]
    actions = ["rotate_signing_secret"]

    @admin.display(description="Signing secret")
    def signing_secret_shown(self, obj):
        # Per-session webhook_url notifications are signed with this; it is shown in full
        # only once, when the "Rotate signing secret" action makes a new one.
        return mask(obj.signing_secret) if obj.pk else "—"

    @admin.action(description="Rotate signing secret (the new one is shown once)", permissions=["see_secrets"])
    def rotate_signing_secret(self, request, queryset):
        for organization in queryset:
            organization.signing_secret = new_signing_secret()
            organization.save(update_fields=["signing_secret"])
            show_secret_once(request, f"New signing secret for {organization.name}", organization.signing_secret)

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


class TicketTypeForm(MoneyFormMixin, forms.ModelForm):
    """A ticket type with its price in the event's currency units: 18 is €18.00."""

    price = MoneyField(label="Price")
    money_fields = ("price",)

    class Meta:
        model = TicketType
        fields = ["name", "price", "quantity", "max_per_order", "sales_start", "sales_end", "position",
                  "holder_names", "holder_email"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left out (a script posting the older form): one name per order, as before.
        self.fields["holder_names"].required = False

    def clean_holder_names(self) -> str:
        return self.cleaned_data.get("holder_names") or HolderNames.ORDER

    def form_currency(self) -> str:
        # While the event is being saved, the currency is the one just typed on it.
        event = getattr(self, "cleaned_data", {}).get("event")
        if event is None and self.instance.event_id:
            event = self.instance.event
        return event.currency if event is not None else "EUR"


class TicketTypeInline(TenantScopedInline, admin.TabularInline):
    model = TicketType
    form = TicketTypeForm
    formset = TicketTypeFormSet

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event")  # each row's price needs its currency
    extra = 0
    fields = ["name", "price", "quantity", "reserved", "max_per_order", "sales_start", "sales_end", "position",
              "holder_names", "holder_email"]
    readonly_fields = ["reserved"]


class QuestionInline(TenantScopedInline, admin.TabularInline):
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
                  "payment_providers", "ends_at", "duration_minutes", "invoice_details"]

    def __init__(self, *args, **kwargs):
        from payments.models import Provider  # payments' models import this app's

        super().__init__(*args, **kwargs)
        self.fields["payment_providers"].choices = Provider.choices
        # Left out (a script posting the older form): the defaults, as before these existed.
        for name in ("duration_minutes", "invoice_details"):
            self.fields[name].required = False

    def clean_duration_minutes(self) -> int:
        return self.cleaned_data.get("duration_minutes") or Event._meta.get_field("duration_minutes").default

    def clean_invoice_details(self) -> str:
        return self.cleaned_data.get("invoice_details") or InvoiceDetails.OFF

    def clean_payment_providers(self) -> list[str]:
        return list(self.cleaned_data["payment_providers"])


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    form = EventAdminForm
    list_display = ["name", "organization", "starts_at", "published", "public_link"]
    list_filter = ["published"]
    search_fields = ["name"]
    readonly_fields = ["public_id", "public_link"]
    inlines = [TicketTypeInline, QuestionInline, GateSettingsInline]
    actions = ["send_gate_test_request", "rotate_gate_secret"]

    change_form_template = "admin/ievents/event/change_form.html"

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        announce_new_gate_secret(request, formset, shown=self.has_see_secrets_permission(request, form.instance))
        warn_if_gate_off(request, formset)

    def get_urls(self):
        test = path("<path:object_id>/gate-test/", self.admin_site.admin_view(self.gate_test_view),
                    name="ievents_event_gate_test")
        return [test, *super().get_urls()]

    def gate_test_view(self, request, object_id):
        """The event page's "Send test request" button (a POST: the call is real)."""
        event = self.get_object(request, unquote(object_id))
        if event is None:
            raise Http404("No such event.")
        if request.method != "POST" or not self.has_act_permission(request, event):
            raise PermissionDenied
        return gate_test_page(self, request, event)

    @admin.action(description="Send a test request to the pre-payment gate", permissions=["act"])
    def send_gate_test_request(self, request, queryset):
        send_gate_test_request(self, request, queryset)

    @admin.action(description="Rotate the gate's signing secret (shows the new one once)", permissions=["see_secrets"])
    def rotate_gate_secret(self, request, queryset):
        rotate_gate_secret(self, request, queryset)

    @admin.display(description="Public page")
    def public_link(self, obj):
        if not obj.pk:
            return "—"
        return format_html('<a href="{}" target="_blank">{}</a>', obj.get_absolute_url(), obj.get_absolute_url())


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    title = "API keys"
    list_display = ["prefix", "name", "role", "organization", "created_at", "last_used_at", "revoked_at"]
    fields = ["organization", "name", "role", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        row, key = ApiKey.issue(obj.organization, name=obj.name, role=obj.role)
        obj.pk = row.pk
        show_secret_once(request, f"Your new API key “{obj.name}” ({obj.get_role_display()})", key)
