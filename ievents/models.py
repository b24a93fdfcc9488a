"""The core domain every app uses: tenants, their members, events and ticket types, API keys."""

import base64
import hashlib
import secrets
import zoneinfo
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .crypto import EncryptedTextField, new_public_id


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` followed by 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# Names the tz database lists that are no place: "localtime" is whatever zone the server is
# in, "Factory" a placeholder.
NOT_PLACES = {"localtime", "Factory"}


def validate_time_zone(name: str) -> None:
    """An IANA time zone name this machine knows, such as Europe/Lisbon."""

    if name in NOT_PLACES or name not in zoneinfo.available_timezones():
        raise ValidationError(_("Choose a time zone such as Europe/Lisbon."), code="invalid_time_zone")


class Organization(models.Model):
    """A tenant: an organizer's company. Everything an organizer sees hangs off one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    public_id = models.CharField(
        max_length=40, unique=True, default=partial(new_public_id, "org"), editable=False,
        help_text=_("Used in the webhook URLs you give payment providers."),
    )
    signing_secret = EncryptedTextField(
        default=new_signing_secret, help_text=_("Signs notifications sent to per-session webhook URLs.")
    )
    notification_email = models.EmailField(blank=True, help_text=_("Where we write when something needs you."))
    timezone = models.CharField(
        max_length=64, default="Europe/Lisbon", validators=[validate_time_zone],
        help_text=_("IANA time zone of the back office's order lists and pages, e.g. Europe/Lisbon "
                    "(an event's own times are in the event's zone)."),
    )
    require_two_factor = models.BooleanField(
        _("require two-factor sign-in"), default=False,
        help_text=_("Members sign in with a code from an authenticator app as well as their password; a member "
                    "without one sets it up before anything else."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    """What a member (or an API key) may do for its organization; the rules are in ``ievents.roles``."""

    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    VIEWER = "viewer", _("Viewer")


class Membership(models.Model):
    """Who may act for an organization in the admin, and as what."""

    Role = Role

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.OWNER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")]
        verbose_name = "member"  # the Team screen lists "members"
        verbose_name_plural = "members"

    def __str__(self):
        return f"{self.user} @ {self.organization}"


currency_code = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code such as EUR.")


class InvoiceDetails(models.TextChoices):
    """Whether an event's checkout asks for invoice details (``checkout.invoice``)."""

    OFF = "off", _("Not asked")
    OPTIONAL = "optional", _("Optional")
    REQUIRED = "required", _("Required")


class Event(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="events")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "ev"), editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    venue = models.CharField(max_length=200, blank=True)
    starts_at = models.DateTimeField()
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])
    timezone = models.CharField(
        max_length=64, default="Europe/Lisbon", validators=[validate_time_zone],
        help_text=_("The venue's time zone, e.g. Europe/Lisbon: every time an attendee sees is shown in it."),
    )
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the event ends; empty: the duration below after it starts."))
    # db_default too: rows written by plain SQL (bench/scale_data.py) get it as well.
    duration_minutes = models.PositiveIntegerField(
        default=120, db_default=120, validators=[MinValueValidator(1)],
        help_text=_("Used for the calendar entry's end when the event has no end time."))
    invoice_details = models.CharField(
        max_length=10, choices=InvoiceDetails.choices, default=InvoiceDetails.OFF, db_default=InvoiceDetails.OFF,
        help_text=_("Ask attendees for invoice details (NIF or EU VAT number, name or company, address). "
                    "We pass them on; we do not issue certified invoices."))
    published = models.BooleanField(default=True)
    payment_providers = models.JSONField(
        default=list, blank=True,
        help_text=_("Providers offered to attendees, e.g. [\"stripe\", \"easypay\"]. Empty: every enabled one."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("checkout:event", args=[self.public_id])

    @property
    def ends(self):
        """When the event ends: its end time, or its start plus its duration."""
        return self.ends_at or self.starts_at + timedelta(minutes=self.duration_minutes)


class HolderNames(models.TextChoices):
    ORDER = "order", _("One name per order")
    TICKET = "ticket", _("A name on each ticket")


class TicketType(models.Model):
    """A kind of ticket. ``reserved`` counts tickets held by open checkouts plus those sold."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="ticket_types")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "tt"), editable=False)
    name = models.CharField(max_length=200)
    price = models.PositiveIntegerField(help_text=_("In minor units: 1500 is 15.00."))
    quantity = models.PositiveIntegerField(help_text=_("How many exist in all."))
    reserved = models.PositiveIntegerField(default=0, editable=False)
    max_per_order = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    sales_start = models.DateTimeField(null=True, blank=True)
    sales_end = models.DateTimeField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    # Off the public page: sold only with an access code that reveals it (checkout.promo).
    hidden = models.BooleanField(
        default=False, db_default=False, verbose_name=_("only with an access code"),
        help_text=_("Hidden from the event page; shown to attendees whose promo code reveals it."),
    )
    # Named tickets: one name for the whole order (the buyer's), or a holder named on each
    # ticket of this type (checkout.holders), optionally with their email.
    holder_names = models.CharField(
        max_length=10, choices=HolderNames.choices, default=HolderNames.ORDER, db_default=HolderNames.ORDER,
        help_text=_("One name per order (the buyer's), or a name for each ticket."))
    holder_email = models.BooleanField(default=False, db_default=False,
                                       help_text=_("With a name per ticket: also ask each holder's email."))

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(reserved__lte=models.F("quantity")), name="no_oversell"),
        ]

    def __str__(self):
        return f"{self.event}: {self.name}"

    @property
    def available(self) -> int:
        return max(self.quantity - self.reserved, 0)

    def on_sale(self, now=None) -> bool:
        now = now or timezone.now()
        return (self.sales_start is None or self.sales_start <= now) and (self.sales_end is None or now < self.sales_end)


class Question(models.Model):
    """A custom question the organizer asks every attendee."""

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        CHOICE = "choice", _("Choice")
        CHECKBOX = "checkbox", _("Checkbox")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="questions")
    text = models.CharField(max_length=300)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    choices = models.TextField(blank=True, help_text=_("For choice questions: one option per line."))
    required = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    # Named tickets (checkout.holders): asked of each ticket's holder instead of once per
    # order, for ticket types that name each ticket.
    per_ticket = models.BooleanField(default=False, db_default=False,
                                     help_text=_("Ask it of each ticket's holder (ticket types with a name per ticket)."))

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.text

    @property
    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.choices.splitlines() if line.strip()]


# How exactly an API key's "last used" is kept (see ``ApiKey.authenticate``).
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiKey(models.Model):
    """An organization's API key. Only a hash is stored; the key is shown once."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.OWNER,
                            help_text=_("Viewer keys only read; manager keys cannot reach secret-bearing routes."))
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, organization: Organization, name: str = "default", role: str = Role.OWNER) -> tuple["ApiKey", str]:
        """Create a key; return the row and the plaintext key (never stored)."""
        prefix = "iev_" + secrets.token_hex(4)
        key = f"{prefix}_{secrets.token_urlsafe(32)}"
        row = cls.objects.create(organization=organization, name=name, role=role, prefix=prefix,
                                 key_hash=cls.hash(key))
        return row, key

    @classmethod
    def authenticate(cls, key: str) -> "ApiKey | None":
        row = (
            cls.objects.select_related("organization")
            .filter(key_hash=cls.hash(key), revoked_at__isnull=True)
            .first()
        )
        # "Last used" to the minute: written at most once a minute per key, not on every
        # request, so a client's burst (an on-sale through the API) does not queue on this
        # one row's lock, nor pay a write per request (issue 26).
        now = timezone.now()
        if row is not None and (row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION):
            cls.objects.filter(pk=row.pk).update(last_used_at=now)
            row.last_used_at = now
        return row


class IdempotencyRecord(models.Model):
    """A POST's ``Idempotency-Key`` and the first answer to it (``ievents.idempotency``).

    Its own table, not the cache: the database cache keeps at most ``MAX_ENTRIES`` (300)
    rows and culls a third of them when full, so past a few hundred keyed requests a day a
    repeat could run again; and it counts its table on every write. Here claiming a key is
    one insert and keeping its answer one update; rows past ``expires_at`` are deleted by
    the retention pass (``ievents.operations.retention``).
    """

    key = models.CharField(max_length=64, primary_key=True)  # a hash of the API key's header and the key
    fingerprint = models.CharField(max_length=64)  # an HMAC of the request: the same key for another is refused
    state = models.CharField(max_length=10)  # running, done, withheld
    status = models.PositiveSmallIntegerField(null=True)
    content = models.BinaryField(default=b"")  # sealed with a key made from the request itself
    content_type = models.CharField(max_length=100, blank=True)
    sessions = models.JSONField(default=list)  # the checkout sessions the answer names (erasure)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.key[:12]}… ({self.state})"


class Invitation(models.Model):
    """An owner's invitation to join their organization's team with a role (``ievents.team``).

    Only a hash of the link's token is kept: the link is in the email and nowhere else. It
    works once, until ``expires_at``, and not after it was revoked.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MANAGER)
    language = models.CharField(max_length=10, default="en", help_text=_("The language of the invitation email."))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.email

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def usable(self, now=None) -> bool:
        return self.accepted_at is None and self.revoked_at is None and (now or timezone.now()) < self.expires_at
