"""Admin: the pre-payment gate, inline on its event, and the log of its calls.

The inline and the two event actions (send a test request, rotate the secret) are hooked
into ``ievents.admin.EventAdmin`` (which imports this module; this one imports
only ``ievents.admin_base``); the call log is its own read-only list. The secret is
never shown in full here except once, right after a rotation, so it can be copied.
"""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ievents.admin_base import ReadOnlyTenantAdmin, TenantScopedInline, show_secret_once
from ievents.crypto import mask

from ..gate import GateSettingsInvalid, check_gate_settings, send_test_request
from ..models import GateCall, GateSettings
from ..signing import rotate_secret


class GateSettingsForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=2000, required=False, assume_scheme="https",
                         widget=forms.URLInput(attrs={"class": "vURLField"}))

    class Meta:
        model = GateSettings
        fields = ["enabled", "url", "timeout_ms", "on_error", "denial_message", "error_message"]
        widgets = {  # the defaults cut both messages off after a few words
            "denial_message": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
            "error_message": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
        }
        help_texts = {
            "url": _("Your system's address: before each payment we send it the order's details. Answer 2xx to "
                     "allow, 4xx with {\"message\": …} to deny."),
            "timeout_ms": _("500–10000 ms, everything included. A gate that takes longer counts as failing."),
            "on_error": _("What happens when the gate fails (timeout, 5xx, unreachable): block is the safe default."),
            "denial_message": _("Shown when the gate denies without a message of its own. While it is our text, "
                                "each attendee reads it in their language; your own words are shown as written."),
            "error_message": _("Shown when the gate fails and the policy blocks. While it is our text, each attendee "
                               "reads it in their language; your own words are shown as written."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            # An organizer who types a URL means the gate to run: on unless they untick it.
            self.initial["enabled"] = True

    def clean(self):
        data = super().clean()
        if "timeout_ms" in data and "url" in data:
            try:
                check_gate_settings(url=data["url"] or "", enabled=bool(data.get("enabled")), timeout_ms=data["timeout_ms"])
            except GateSettingsInvalid as exc:
                self.add_error(exc.field, exc.message)
        return data


class GateSettingsInline(TenantScopedInline, admin.StackedInline):
    model = GateSettings
    form = GateSettingsForm
    extra = 0
    max_num = 1
    verbose_name = verbose_name_plural = "pre-payment gate"
    fields = ["enabled", "url", "timeout_ms", "on_error", "denial_message", "error_message", "secret_hint",
              "breaker_state", "calls", "test_button"]
    readonly_fields = ["secret_hint", "breaker_state", "calls", "test_button"]

    @admin.display(description=_("Test"))
    def test_button(self, gate):
        if not gate.pk:
            return "Save the event, then send a test request from here."
        # The button belongs to a form outside the event's own (forms cannot nest): see
        # templates/admin/ievents/event/change_form.html.
        return mark_safe('<button type="submit" form="gate-test-form" class="button">Send test request</button>'  # noqa: S308  (constant text)
                         ' <span class="help">One real, signed call with a sample order; nothing is bought.</span>')

    @admin.display(description=_("Signing secret"))
    def secret_hint(self, gate):
        if not gate.pk:
            return "Generated when you save, and shown to you once then (copy it to your gate)."
        return gettext("%(masked)s (rotate it from the event list to get one you can copy)") % {"masked": mask(gate.secret)}

    @admin.display(description=_("Circuit breaker"))
    def breaker_state(self, gate):
        if gate.pk and gate.breaker_open_until:
            return gettext("Open until %(until)s: the on-error policy applies without a call.") % {
                "until": formats.localize(timezone.localtime(gate.breaker_open_until))}
        return ngettext("Closed (%(count)d failure in a row)", "Closed (%(count)d failures in a row)",
                        gate.consecutive_failures) % {"count": gate.consecutive_failures} if gate.pk else "—"

    @admin.display(description=_("Calls"))
    def calls(self, gate):
        if not gate.pk:
            return "—"
        url = reverse("admin:webhooks_gatecall_changelist") + f"?event__id__exact={gate.event_id}"
        return format_html('<a href="{}">See every call to this gate</a>', url)


def announce_new_gate_secret(request, formset, *, shown: bool) -> None:
    """Show a gate's secret once when the save created it: the organizer's gate cannot verify
    our calls without it (as a new endpoint's and the API's do). Only to those who may see
    secrets; others are told who can."""
    if formset.model is not GateSettings:
        return
    for gate in formset.new_objects:
        if shown:
            show_secret_once(request, gettext("%(event)s: the pre-payment gate's signing secret") % {"event": gate.event},
                             gate.secret)
        else:
            messages.info(request, gettext("%(event)s: the gate has a signing secret; an owner can rotate it to copy it.")
                          % {"event": gate.event})


def warn_if_gate_off(request, formset) -> None:
    """A gate saved with a URL but not enabled checks nobody: say so, every time."""
    if formset.model is not GateSettings:
        return
    for form in formset.forms:
        gate = form.instance
        if gate.pk and gate.url and not gate.enabled:
            messages.warning(request, gettext("%(event)s: the pre-payment gate is disabled, so attendees go to payment "
                                              "without it. Tick Enabled and save to turn it on.") % {"event": gate.event})


def attendee_would_see(gate: GateSettings, call: GateCall) -> str:
    """What the checkout would do with this answer (``webhooks.gate.finish_gate``'s rule)."""
    if call.decision == "allow":
        return gettext("Nothing: they go on to payment.")
    if call.outcome == GateCall.Outcome.DENIED:
        return call.message or gate.shown("denial_message")
    return gate.shown("error_message")


def gate_test_page(modeladmin, request, event):
    """One real, signed call to the event's gate, and a page with its answer."""
    gate = GateSettings.objects.filter(event=event).select_related("event").first()
    context = {**modeladmin.admin_site.each_context(request), "event": event,
               "title": gettext("Gate test: %(event)s") % {"event": event},
               "gate": gate, "opts": modeladmin.opts,
               "back": reverse("admin:ievents_event_change", args=[event.pk]) + "#gate-group"}
    if gate is not None and gate.url:
        call = send_test_request(gate)
        context.update(call=call, attendee_sees=attendee_would_see(gate, call))
    return TemplateResponse(request, "admin/ievents/event/gate_test.html", context)


def send_gate_test_request(modeladmin, request, queryset):
    """Event action: one real, signed call to each selected event's gate; show the outcome."""
    for event in queryset:
        gate = GateSettings.objects.filter(event=event).select_related("event").first()
        if gate is None or not gate.url:
            modeladmin.message_user(request, gettext("%(event)s: no gate URL is set.") % {"event": event}, messages.WARNING)
            continue
        call = send_test_request(gate)
        detail = call.message or call.error
        status = f"HTTP {call.status_code}" if call.status_code else gettext("no HTTP answer")
        text = gettext("%(event)s: the gate test was %(outcome)s (%(status)s, %(ms)d ms)") % {
            "event": event, "outcome": call.get_outcome_display().lower(), "status": status, "ms": call.latency_ms}
        modeladmin.message_user(request, text + (f": {detail}" if detail else "."),
                                messages.SUCCESS if call.outcome == GateCall.Outcome.ALLOWED else messages.WARNING)


def rotate_gate_secret(modeladmin, request, queryset):
    """Event action: a new secret for each selected event's gate, shown once."""
    for event in queryset:
        gate = GateSettings.objects.filter(event=event).first()
        if gate is None:
            modeladmin.message_user(request, gettext("%(event)s: there is no gate to rotate.") % {"event": event},
                                    messages.WARNING)
            continue
        secret = rotate_secret(gate)
        show_secret_once(request, gettext("%(event)s: the gate's new signing secret (the old one keeps signing alongside "
                                          "it for 24 hours)") % {"event": event}, secret)


@admin.register(GateCall)
class GateCallAdmin(ReadOnlyTenantAdmin):
    """Every call to every gate, read-only: what the organizer's system answered, and when."""
    title = _("Gate checks")

    tenant_path = "event__organization"
    # The answer, what the checkout did and why come first: with the event and session
    # first, the reason was scrolled out of view at a laptop's width.
    list_display = ["created_at", "outcome", "decision", "status_code", "reason", "latency_ms", "session_id_link", "event",
                    "is_test", "breaker_open"]
    list_filter = ["outcome", ("event", admin.RelatedOnlyFieldListFilter), ("created_at", admin.DateFieldListFilter),
                   "decision", "is_test", "breaker_open"]
    list_select_related = ["event", "session"]
    search_fields = ["session__public_id", "message", "error"]
    fields = ["created_at", "event", "session", "outcome", "decision", "status_code", "latency_ms", "message", "error",
              "is_test", "breaker_open"]
    readonly_fields = fields

    @admin.display(description=_("Reason"))
    def reason(self, call):
        """The gate's own message for an answer, our error for a failure (one of them is empty)."""
        return call.message or call.error or "—"

    @admin.display(description=_("Session"))
    def session_id_link(self, call):
        return call.session.public_id if call.session_id else ("test" if call.is_test else "—")
