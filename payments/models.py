"""Per-tenant provider settings and the payments started for checkout sessions."""

from functools import partial

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ievents.crypto import EncryptedTextField, new_public_id
from ievents.models import Organization


def provider_choices() -> list[tuple[str, str]]:
    """Every provider's code and name, as its class declares them. The fields take this
    function, not its list, so adding a provider to the registry changes no migration."""
    from .registry import PROVIDER_CLASSES  # the registry reads these models

    return [(code, cls.label) for code, cls in PROVIDER_CLASSES.items()]


class IntegrationSettings(models.Model):
    """One organization's credentials for one provider, encrypted at rest."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=20, choices=provider_choices)
    enabled = models.BooleanField(default=True)
    credentials = EncryptedTextField(blank=True, default="", help_text=_("JSON of the provider's keys."))
    webhook_secret = EncryptedTextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "provider"], name="one_integration_per_provider")]
        verbose_name = _("payment integration")

    def __str__(self):
        return f"{self.organization}: {self.get_provider_display()}"


class Payment(models.Model):
    """A payment started with a provider for a checkout session."""

    class Status(models.TextChoices):
        STARTED = "started", _("Started")
        PENDING = "pending", _("Pending")
        AUTHORIZED = "authorized", _("Authorized")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Canceled")
        REFUNDED = "refunded", _("Refunded")

    session = models.ForeignKey("checkout.CheckoutSession", on_delete=models.CASCADE, related_name="payments")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "pay"), editable=False)
    provider = models.CharField(max_length=20, choices=provider_choices)
    provider_reference = models.CharField(max_length=200, blank=True, db_index=True)
    method = models.CharField(max_length=30, blank=True, help_text=_("card, multibanco, mbway, ..."))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.STARTED)
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    amount_received = models.PositiveIntegerField(default=0)
    instructions = models.JSONField(default=dict, blank=True, help_text=_("What the attendee needs: entity, reference…"))
    redirect_url = models.URLField(max_length=2000, blank=True)
    # The fingerprint of the attendee's details when this payment began (the details the
    # gate approved): its money turns into tickets only while the session still carries
    # those details and that approval (checkout.services.approval_lapsed).
    approved_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    # Why the provider would not start or take it, in the provider's words (shown to the
    # organizer on the order's page, escaped; never to the attendee).
    failure_reason = models.CharField(_("why it failed"), max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.public_id} ({self.get_provider_display()}, {self.get_status_display().lower()})"

class Refund(models.Model):
    """Money given back for an order: through the provider's refund API, or made outside it
    (a bank transfer for a paid Multibanco reference) and recorded here with a note."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending at the provider")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Failed")

    session = models.ForeignKey("checkout.CheckoutSession", on_delete=models.CASCADE, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.RESTRICT, related_name="refunds")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "rf"), editable=False)
    amount = models.PositiveIntegerField(help_text=_("Minor units."))
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=20, choices=provider_choices)
    provider_reference = models.CharField(max_length=200, blank=True, db_index=True,
                                          help_text=_("The refund's id at the provider."))
    made_outside = models.BooleanField(default=False, help_text=_("Refunded outside the provider (bank transfer…)."))
    status = models.CharField(max_length=10, choices=Status.choices)
    # One per click on the refund form: the same form sent twice refunds once.
    idempotency_key = models.CharField(max_length=64, unique=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.public_id
