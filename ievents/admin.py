"""Admin for organizers. Each organizer sees only their own organization's objects."""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404
from django.urls import path
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from webhooks.admin.gate import (
    GateSettingsInline,
    announce_new_gate_secret,
    gate_test_page,
    rotate_gate_secret,
    send_gate_test_request,
    warn_if_gate_off,
)

from .admin_base import (
    LabelledInlineForm,
    TenantScopedAdmin,
    TenantScopedInline,
    label_inputs,
    request_roles,
    show_secret_once,
)
from .admin_time import DEFAULT_ZONE, ZonedSplitDateTime, in_zone, known_zone, local_text
from .crypto import mask
from .models import ApiKey, Event, HolderNames, InvoiceDetails, Organization, Question, TicketType, new_signing_secret
from .money import MoneyField, MoneyFormMixin
from .team_admin import InvitationAdmin, TeamAdmin  # noqa: F401 (registers the Team and Invitations screens)


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin):
    title = _("Settings")
    tenant_path = "pk"
    list_display = ["name", "slug", "public_id"]
    readonly_fields = ["public_id", "signing_secret_shown"]
    exclude = ["signing_secret"]
    actions = ["rotate_signing_secret"]

    @admin.display(description=_("Signing secret"))
    def signing_secret_shown(self, obj):
        # Per-session webhook_url notifications are signed with this; it is shown in full
        # only once, when the "Rotate signing secret" action makes a new one.
        return mask(obj.signing_secret) if obj.pk else "—"

    @admin.action(description=_("Rotate signing secret (the new one is shown once)"), permissions=["see_secrets"])
    def rotate_signing_secret(self, request, queryset):
        for organization in queryset:
            organization.signing_secret = new_signing_secret()
            organization.save(update_fields=["signing_secret"])
            show_secret_once(request, gettext("New signing secret for %(organization)s") % {"organization": organization.name},
                             organization.signing_secret)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        # Deleting an organization takes every event, sale and log with it: operators only.
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
                form.add_error("quantity", ngettext("%(held)d ticket is held or sold: the quantity cannot be lower.",
                                                    "%(held)d tickets are held or sold: the quantity cannot be lower.",
                                                    held) % {"held": held})


# The organizer's texts, one column per language (ievents/translation.py): labelled for
# people ("Name in Portuguese"), side by side, and required in at least one of the two.
IN_LANGUAGE = {"en": _("%(field)s in English"), "pt_pt": _("%(field)s in Portuguese")}


def both_languages(*fields: str) -> list[str]:
    """``"name"`` → ``["name_en", "name_pt_pt"]``: a form's or an inline's columns."""
    return [f"{field}_{suffix}" for field in fields for suffix in IN_LANGUAGE]


class BothLanguagesForm(forms.ModelForm):
    """A form with the organizer's texts in English and Portuguese; ``required_texts`` are
    needed in one language at least (the attendee page shows the other's when one is empty)."""

    required_texts: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        bases = [name.removesuffix("_en") for name in self.fields if name.endswith("_en")]
        for base in bases:
            verbose_name = capfirst(self._meta.model._meta.get_field(base).verbose_name)
            for suffix, label in IN_LANGUAGE.items():
                field = self.fields[f"{base}_{suffix}"]
                field.label = label % {"field": verbose_name}

    def clean(self):
        cleaned = super().clean()
        for base in self.required_texts:
            if f"{base}_en" in self.fields and not (cleaned.get(f"{base}_en") or cleaned.get(f"{base}_pt_pt")):
                self.add_error(f"{base}_en", _("Write it in English, in Portuguese or in both."))
        return cleaned


class TicketTypeForm(MoneyFormMixin, BothLanguagesForm, LabelledInlineForm):
    """A ticket type with its price in the event's currency units: 18 is €18.00."""

    price = MoneyField(label=_("Price"))
    money_fields = ("price",)
    required_texts = ("name",)

    class Meta:
        model = TicketType
        fields = [*both_languages("name"), "price", "quantity", "max_per_order", "sales_start", "sales_end", "position", "hidden",
                  "holder_names", "holder_email"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left out (a script posting the older form): one name per order, as before.
        if "holder_names" in self.fields:  # a viewer's form has no inputs
            self.fields["holder_names"].required = False

    def clean_holder_names(self) -> str:
        return self.cleaned_data.get("holder_names") or HolderNames.ORDER

    def form_currency(self) -> str:
        # While the event is being saved, the currency is the one just typed on it.
        event = getattr(self, "cleaned_data", {}).get("event")
        if event is None and self.instance.event_id:
            event = self.instance.event
        return event.currency if event is not None else "EUR"


# Date-times typed as date and time, with the zone they are read in written beside them.
ZONED_DATETIMES = {models.DateTimeField: {"form_class": forms.SplitDateTimeField, "widget": ZonedSplitDateTime}}


class TicketTypeInline(TenantScopedInline, admin.TabularInline):
    model = TicketType
    form = TicketTypeForm
    formset = TicketTypeFormSet
    formfield_overrides = ZONED_DATETIMES  # sales start and end: in the event's zone, as the event's start

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event")  # each row's price needs its currency
    extra = 0
    fields = [*both_languages("name"), "price", "quantity", "reserved", "max_per_order", "sales_start", "sales_end",
              "position", "hidden", "holder_names", "holder_email"]
    readonly_fields = ["reserved"]


class QuestionForm(BothLanguagesForm, LabelledInlineForm):
    required_texts = ("text",)

    class Meta:
        model = Question
        fields = [*both_languages("text"), "kind", *both_languages("choices"), "required", "position"]
        widgets = {name: forms.Textarea(attrs={"rows": 3, "cols": 16}) for name in both_languages("choices")}


class QuestionInline(TenantScopedInline, admin.TabularInline):
    model = Question
    form = QuestionForm
    fields = QuestionForm.Meta.fields
    extra = 0


class EventAdminForm(BothLanguagesForm):
    """The event, its name and description in both languages side by side, and its payment
    providers as tick boxes rather than a JSON list."""

    required_texts = ("name",)

    payment_providers = forms.MultipleChoiceField(
        choices=[], required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("Offered to attendees, among those enabled in the organization's payment settings. "
                    "None ticked: every enabled one."),
    )

    class Meta:
        model = Event
        fields = ["organization", *both_languages("name", "description"), "venue", "starts_at", "timezone", "currency",
                  "published", "payment_providers", "ends_at", "duration_minutes", "invoice_details"]
        widgets = {name: forms.Textarea(attrs={"rows": 4, "cols": 34}) for name in both_languages("description")}
        help_texts = {
            "starts_at": _("On the clock of the event's time zone, as attendees read it."),
            "timezone": _(
                "IANA time zone of the venue, e.g. Europe/Lisbon. The event's start and its ticket types' sales "
                "start and end are typed and shown in it, and attendees read every time in it. Changing it keeps "
                "the clock times as typed: 20:00 stays 20:00, now in the new zone."),
        }

    def __init__(self, *args, **kwargs):
        from payments.models import provider_choices  # payments' models import this app's

        super().__init__(*args, **kwargs)
        self.fields["payment_providers"].choices = provider_choices
        label_inputs(self, all_fields=False)
        # Left out (a script posting the older form): the defaults, as before these existed.
        for name in ("duration_minutes", "invoice_details"):
            if name in self.fields:  # a viewer's form has no inputs
                self.fields[name].required = False

    def clean_duration_minutes(self) -> int:
        return self.cleaned_data.get("duration_minutes") or Event._meta.get_field("duration_minutes").default

    def clean_invoice_details(self) -> str:
        return self.cleaned_data.get("invoice_details") or InvoiceDetails.OFF

    def clean_payment_providers(self) -> list[str]:
        return list(self.cleaned_data["payment_providers"])


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    title = _("Events")
    form = EventAdminForm
    list_display = ["name", "organization", "starts", "published", "public_link"]
    list_filter = ["published"]
    search_fields = both_languages("name")  # either language finds it, whatever the admin's
    readonly_fields = ["public_id", "public_link"]
    fields = ["organization", tuple(both_languages("name")), tuple(both_languages("description")), "venue",
              "starts_at", "ends_at", "duration_minutes", "timezone", "currency", "published", "payment_providers",
              "invoice_details", "public_id", "public_link"]
    inlines = [TicketTypeInline, QuestionInline, GateSettingsInline]
    actions = ["send_gate_test_request", "rotate_gate_secret"]
    formfield_overrides = ZONED_DATETIMES

    change_form_template = "admin/ievents/event/change_form.html"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """The event's page on the event's clock: its times are shown and read in its zone.

        A zone chosen in the form being saved is the one its times are read in (a new event's
        "20:00" in the zone picked beside it; an existing event moved to another zone keeps its
        clock times). An unknown zone is the form's error, and the times are then read in the
        event's saved zone.
        """
        zone = known_zone(request.POST.get("timezone")) if request.method == "POST" else None
        if zone is None and object_id:
            event = self.get_object(request, unquote(object_id))
            zone = known_zone(event.timezone if event is not None else None)
        if zone is None:
            zone = self.get_changeform_initial_data(request).get("timezone", DEFAULT_ZONE)
        return in_zone(zone, super().changeform_view, request, object_id, form_url, extra_context)

    def get_changeform_initial_data(self, request):
        """A new event starts in its organization's zone when the user has one organization."""
        initial = super().get_changeform_initial_data(request)
        if "timezone" not in initial and not request.user.is_superuser:
            zones = set(Organization.objects.filter(pk__in=list(request_roles(request))).values_list("timezone",
                                                                                                    flat=True))
            if len(zones) == 1:
                initial["timezone"] = zones.pop()
        return initial

    @admin.display(description=_("Starts"), ordering="starts_at")
    def starts(self, event):
        return local_text(event.starts_at, event.timezone)

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

    @admin.action(description=_("Send a test request to the pre-payment gate"), permissions=["act"])
    def send_gate_test_request(self, request, queryset):
        send_gate_test_request(self, request, queryset)

    @admin.action(description=_("Rotate the gate's signing secret (shows the new one once)"), permissions=["see_secrets"])
    def rotate_gate_secret(self, request, queryset):
        rotate_gate_secret(self, request, queryset)

    @admin.display(description=_("Public page"))
    def public_link(self, obj):
        if not obj.pk:
            return "—"
        return format_html('<a href="{}" target="_blank">{}</a>', obj.get_absolute_url(), obj.get_absolute_url())


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    title = _("API keys")
    list_display = ["prefix", "name", "role", "organization", "created_at", "last_used_at", "revoked_at"]
    fields = ["organization", "name", "role", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        row, key = ApiKey.issue(obj.organization, name=obj.name, role=obj.role)
        obj.pk = row.pk
        show_secret_once(request, gettext("Your new API key “%(name)s” (%(role)s)") % {"name": obj.name,
                                                                                "role": obj.get_role_display()}, key)
