"""Webhooks in both directions.

Outbound: the per-event pre-payment gate and its call log; endpoints, outbox events,
deliveries and their attempts. Inbound: the log of every provider webhook received.
"""

from functools import partial

from django.db import models
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from ievents.crypto import EncryptedTextField, new_public_id
from ievents.models import Event, Organization, new_signing_secret

# --- The pre-payment gate --------------------------------------------------------------
# Our defaults for the attendee's messages, kept in English in the database and translated
# when shown (``GateSettings.shown``); a message the organizer typed is shown as written.
DEFAULT_DENIAL_MESSAGE = gettext_noop("This purchase could not be approved. Please contact the organizer.")
DEFAULT_ERROR_MESSAGE = gettext_noop("We could not check your purchase right now. Please try again in a few minutes.")


class GateSettings(models.Model):
    """An event's ``checkout.validate`` gate."""

    class OnError(models.TextChoices):
        BLOCK = "block", _("Block the purchase")
        ALLOW = "allow", _("Allow the purchase")

    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="gate")
    enabled = models.BooleanField(default=False)
    url = models.URLField(max_length=2000, blank=True)
    secret = EncryptedTextField(default=new_signing_secret)
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    timeout_ms = models.PositiveIntegerField(default=3000)
    on_error = models.CharField(max_length=5, choices=OnError.choices, default=OnError.BLOCK)
    denial_message = models.CharField(max_length=500, default=DEFAULT_DENIAL_MESSAGE)
    error_message = models.CharField(max_length=500, default=DEFAULT_ERROR_MESSAGE)
    # Circuit breaker state, shared by every web process through the database.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    breaker_open_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("pre-payment gate")

    def __str__(self):
        return f"Gate for {self.event}"

    def shown(self, field: str) -> str:
        """The attendee's message ``field`` (``denial_message``, ``error_message``): the
        organizer's words as written, or ours, translated, while it is still our default."""
        text = getattr(self, field)
        default = self._meta.get_field(field).default
        return gettext(default) if text == default else text


class GateCall(models.Model):
    """One call to a gate (or one decision taken without calling it), for the organizer."""

    class Outcome(models.TextChoices):
        ALLOWED = "allowed", _("Allowed")
        DENIED = "denied", _("Denied")
        ERROR = "error", _("Error")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="gate_calls")
    session = models.ForeignKey(
        "checkout.CheckoutSession", null=True, blank=True, on_delete=models.CASCADE, related_name="gate_calls"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    decision = models.CharField(max_length=5, help_text=_("allow or deny: what the checkout did."))
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True, help_text=_("The remote message, as received (capped)."))
    error = models.CharField(max_length=500, blank=True)
    is_test = models.BooleanField(default=False)
    breaker_open = models.BooleanField(default=False, help_text=_("Decided by the breaker without calling."))
    client_ip = models.GenericIPAddressField(null=True, blank=True, help_text=_("The attendee's address (rate limit)."))
    # What the rate limit and the breaker count by (``checkout.limits.address_key``): an IPv4
    # address or an IPv6 address's /64, so addresses rotated within one /64 count as one.
    address_key = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The admin's per-event call log, newest first.
            models.Index(fields=["event", "created_at"], name="gatecall_event_recent"),
            # The rate limit counts a session's recent calls and an address's for an event:
            # each count reads only the rows it counts, however busy the event.
            models.Index(fields=["session", "created_at"], name="gatecall_session_recent"),
            models.Index(fields=["event", "address_key", "created_at"], name="gatecall_client_recent"),
        ]

    def __str__(self):
        return f"{'Test call' if self.is_test else 'Call'} {self.pk}: {self.get_outcome_display().lower()}"


# --- Outbound notifications ------------------------------------------------------------
class WebhookEndpoint(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "we"), editable=False)
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=300, blank=True)
    enabled_events = models.JSONField(default=list, help_text='Event types, or ["*"] for all.')
    secret = EncryptedTextField(default=new_signing_secret)
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.url

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


class OutboxEvent(models.Model):
    """A notification, written in the transaction that changed the state."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="outbox_events")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "evt"), editable=False)
    type = models.CharField(max_length=60, db_index=True)
    session = models.ForeignKey(
        "checkout.CheckoutSession", null=True, blank=True, on_delete=models.CASCADE, related_name="outbox_events"
    )
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.type} {self.public_id}"


class Delivery(models.Model):
    """One event to one target (an endpoint, or a session's own ``webhook_url``)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "del"), editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    target_url = models.URLField(max_length=2000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = _("deliveries")

    def __str__(self):
        return self.public_id


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text=_("Capped."))
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["number"]
        indexes = [
            # The retention pass deletes the oldest attempts first, a batch at a time.
            models.Index(fields=["started_at"], name="attempt_started"),
        ]

    def __str__(self):
        return f"Attempt {self.number}"


# --- Inbound provider webhooks ---------------------------------------------------------
class InboundWebhook(models.Model):
    """Every provider webhook received, verified or not. ``dedupe_key`` makes it once-only."""

    class Outcome(models.TextChoices):
        PROCESSED = "processed", _("Processed")
        DUPLICATE = "duplicate", _("Duplicate")
        IGNORED = "ignored", _("Ignored")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    provider = models.CharField(max_length=20)
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE)
    event_id = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=100, blank=True)
    dedupe_key = models.CharField(max_length=300, null=True, blank=True, unique=True)
    verified = models.BooleanField(default=False)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    error = models.CharField(max_length=500, blank=True)
    session = models.ForeignKey(
        "checkout.CheckoutSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_webhooks"
    )
    payload = models.TextField(blank=True, help_text=_("As received, capped."))
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Copies of this delivery received after it (the provider retrying): counted on the first
    # copy's row by one UPDATE through the ``dedupe_key`` index, instead of a row each, so a
    # duplicate costs one indexed statement (issue 26) and stores no second copy of the payload.
    duplicates = models.PositiveIntegerField(default=0, db_default=0)  # db_default: rows written in SQL (bench)
    last_duplicate_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.provider} {self.type or 'webhook'} {self.event_id or self.pk}"
