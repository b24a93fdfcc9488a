"""Promo codes in the back office: each code of an event, its uses, and single-use codes
made in bulk and downloaded as CSV (``checkout.promo``).

Times are typed and shown in the event's time zone, amounts in its currency units.
"""

from __future__ import annotations

import zoneinfo
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ievents.admin_base import TenantScopedAdmin, permitted_organization_ids
from ievents.models import Event, TicketType
from ievents.money import MoneyField, MoneyFormMixin, format_money, to_minor
from ievents.roles import ADD

from . import promo
from .admin_export import csv_lines, dialect_for
from .models import PromoCode, normalize_code


class PromoCodeForm(MoneyFormMixin, forms.ModelForm):
    amount_off = MoneyField(label=_("Amount off"), required=False, min_value=0,
                            help_text=_("Off each ticket, in the event's currency: 5 means 5.00. Or a percentage."))
    money_fields = ("amount_off",)

    class Meta:
        model = PromoCode
        fields = ["event", "code", "percent_off", "amount_off", "ticket_types", "reveals_ticket_types", "max_uses",
                  "max_uses_per_order", "valid_from", "valid_until", "uses_return_on_refund"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].required = False
        self.fields["code"].help_text = "Letters, digits and hyphens, any case. Empty: one is made for you."

    def form_currency(self) -> str:
        event = getattr(self, "cleaned_data", {}).get("event") or (self.instance.event if self.instance.event_id
                                                                    else None)
        return event.currency if event is not None else "EUR"

    def clean(self):
        cleaned = super().clean()
        event = cleaned.get("event") or (self.instance.event if self.instance.event_id else None)
        code = normalize_code(cleaned.get("code") or "") or promo.new_code()
        cleaned["code"] = code
        if cleaned.get("percent_off") is not None and not 1 <= cleaned["percent_off"] <= 100:
            self.add_error("percent_off", "Give a percentage from 1 to 100.")
        if cleaned.get("percent_off") and cleaned.get("amount_off"):
            self.add_error("amount_off", "Give a percentage or an amount off, not both.")
        if cleaned.get("amount_off") == 0:
            cleaned["amount_off"] = None
        for name in ("ticket_types", "reveals_ticket_types"):
            if event is not None and any(tt.event_id != event.pk for tt in cleaned.get(name) or ()):
                self.add_error(name, "Choose ticket types of this code's event.")
        if cleaned.get("valid_from") and cleaned.get("valid_until") and cleaned["valid_until"] <= cleaned["valid_from"]:
            self.add_error("valid_until", "It must be after “valid from”.")
        if event is not None and PromoCode.objects.filter(event=event, code=code).exclude(pk=self.instance.pk).exists():
            self.add_error("code", f"This event already has the code {code}.")
        if self.instance.pk and cleaned.get("max_uses") is not None:
            # Locked for the rest of the admin's transaction, as a checkout taking a use locks it.
            used = PromoCode.objects.select_for_update().values_list("used", flat=True).get(pk=self.instance.pk)
            if cleaned["max_uses"] < used:
                self.add_error("max_uses", f"{used} use(s) are held or used: the limit cannot be lower.")
        return cleaned


def event_zone(event: Event | None):
    return zoneinfo.ZoneInfo(event.timezone) if event is not None else timezone.get_current_timezone()


@admin.register(PromoCode)
class PromoCodeAdmin(TenantScopedAdmin):
    title = "Promo codes"
    form = PromoCodeForm
    tenant_path = "event__organization"
    list_display = ["code", "event", "gives", "uses", "valid_until_shown", "public_id"]
    list_filter = [("event", admin.RelatedOnlyFieldListFilter)]  # only events of the codes listed: the tenant's
    search_fields = ["code"]
    readonly_fields = ["public_id", "used"]
    filter_horizontal = ["ticket_types", "reveals_ticket_types"]
    actions = ["export_csv"]
    change_list_template = "admin/checkout/promocode/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event")

    def get_readonly_fields(self, request, obj=None):
        # A code's orders and uses belong to its event: it never moves to another.
        return [*self.readonly_fields, "event"] if obj is not None else self.readonly_fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if not request.user.is_superuser:
            field.queryset = TicketType.objects.filter(event__organization__in=permitted_organization_ids(
                request, ADD, self.opts.label_lower)).select_related("event")
        return field

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """Times typed and shown in the code's event's zone (on a new code, the event chosen)."""
        obj = self.get_object(request, object_id) if object_id else None
        event = obj.event if obj is not None else self._chosen_event(request)
        with timezone.override(event_zone(event)):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):  # rendered here: a TemplateResponse renders later, outside the zone
                response.render()
            return response

    def _chosen_event(self, request) -> Event | None:
        pk = request.POST.get("event") or request.GET.get("event")
        visible = Event.objects.filter(organization__in=permitted_organization_ids(request, ADD, self.opts.label_lower))
        if request.user.is_superuser:
            visible = Event.objects.all()
        return visible.filter(pk=pk).first() if pk and str(pk).isdigit() else None

    @admin.display(description=_("Gives"))
    def gives(self, code: PromoCode) -> str:
        if code.percent_off:
            return f"{code.percent_off} % off"
        if code.amount_off:
            return f"{format_money(code.amount_off, code.event.currency)} off"
        return "Access only"

    @admin.display(description=_("Uses"))
    def uses(self, code: PromoCode) -> str:
        return f"{code.used} of {code.max_uses}" if code.max_uses is not None else f"{code.used} (no limit)"

    @admin.display(description=_("Valid until"), ordering="valid_until")
    def valid_until_shown(self, code: PromoCode) -> str:
        if code.valid_until is None:
            return "—"
        return timezone.localtime(code.valid_until, event_zone(code.event)).strftime("%Y-%m-%d %H:%M %Z")

    @admin.action(description=_("Export selected codes as CSV"))
    def export_csv(self, request, queryset):
        return codes_csv(queryset.select_related("event").order_by("event_id", "code"), "promo-codes.csv")

    def get_urls(self):
        bulk = path("bulk/", self.admin_site.admin_view(self.bulk_view), name="checkout_promocode_bulk")
        return [bulk, *super().get_urls()]

    def bulk_view(self, request):
        """Make N single-use codes for an event and download them as CSV."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BulkCodesForm(request.POST or None, events=self._events_for_adding(request))
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            template = PromoCode(event=data["event"], percent_off=data["percent_off"],
                                 amount_off=data["amount_off"], valid_from=data["valid_from"],
                                 valid_until=data["valid_until"])
            try:
                made = promo.create_single_use_codes(template, data["count"], prefix=data["prefix"],
                                                     ticket_types=data["ticket_types"])
            except ValueError as exc:
                messages.error(request, str(exc))
                return redirect("admin:checkout_promocode_bulk")
            return codes_csv(PromoCode.objects.filter(pk__in=[c.pk for c in made]).select_related("event")
                             .order_by("code"), f"codes-{data['event'].public_id}.csv")
        context = {**self.admin_site.each_context(request), "title": "Make single-use codes", "form": form,
                   "opts": self.opts}
        return TemplateResponse(request, "admin/checkout/promocode/bulk.html", context)

    def _events_for_adding(self, request):
        if request.user.is_superuser:
            return Event.objects.all()
        return Event.objects.filter(organization__in=permitted_organization_ids(request, ADD, self.opts.label_lower))


class BulkCodesForm(forms.Form):
    event = forms.ModelChoiceField(queryset=Event.objects.none())
    count = forms.IntegerField(label=_("How many codes"), min_value=1, max_value=10_000, initial=50)
    prefix = forms.RegexField(r"^([A-Za-z0-9][A-Za-z0-9-]{0,9})?$", required=False, max_length=10,
                              help_text=_("Optional, up to 10 letters, digits or hyphens before each code."))
    percent_off = forms.IntegerField(min_value=1, max_value=100, required=False)
    amount_off = MoneyField(label=_("Amount off"), required=False, help_text=_("Off each ticket, in the event's currency."))
    ticket_types = forms.ModelMultipleChoiceField(queryset=TicketType.objects.none(), required=False,
                                                  help_text=_("The ticket types they apply to. None: every type."))
    valid_from = forms.DateTimeField(required=False, help_text=_("In the event's time zone: 2027-03-01 09:00."))
    valid_until = forms.DateTimeField(required=False, help_text=_("In the event's time zone."))

    def __init__(self, *args, events, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].queryset = events
        self.fields["ticket_types"].queryset = TicketType.objects.filter(event__in=events).select_related("event")

    def clean(self):
        cleaned = super().clean()
        event = cleaned.get("event")
        if event is None:
            return cleaned
        if cleaned.get("percent_off") and cleaned.get("amount_off"):
            self.add_error("amount_off", "Give a percentage or an amount off, not both.")
        if cleaned.get("amount_off") is not None:
            try:
                cleaned["amount_off"] = to_minor(cleaned["amount_off"], event.currency) or None
            except ValueError as exc:
                self.add_error("amount_off", str(exc))
        if any(tt.event_id != event.pk for tt in cleaned.get("ticket_types") or ()):
            self.add_error("ticket_types", "Choose ticket types of the chosen event.")
        zone = event_zone(event)
        for name in ("valid_from", "valid_until"):  # typed as the event's local time
            if cleaned.get(name) is not None:
                cleaned[name] = cleaned[name].replace(tzinfo=zone)
        return cleaned


CSV_COLUMNS = ["Code", "Event", "Gives", "Max uses", "Used", "Valid from", "Valid until", "Link"]


def codes_csv(codes, filename: str) -> StreamingHttpResponse:
    """The codes as CSV, with the link that fills each one in on the event's page."""
    def rows():
        yield CSV_COLUMNS
        for code in codes.iterator(chunk_size=2000):
            zone = event_zone(code.event)
            when = [timezone.localtime(t, zone).isoformat(timespec="minutes") if t else ""
                    for t in (code.valid_from, code.valid_until)]
            gives = (f"{code.percent_off}%" if code.percent_off else
                     format_money(code.amount_off, code.event.currency) if code.amount_off else "access")
            yield [code.code, code.event.name, gives, code.max_uses if code.max_uses is not None else "", code.used,
                   *when, f"{settings.PUBLIC_BASE_URL}{code.event.get_absolute_url()}?{urlencode({'code': code.code})}"]

    response = StreamingHttpResponse(csv_lines(rows(), dialect_for()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
