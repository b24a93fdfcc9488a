"""Checkout sessions, what they hold, and their history.

``CheckoutSession.status`` is assigned only by ``checkout.state.apply``.
"""

import secrets
from functools import partial

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper

from ievents.crypto import new_public_id
from ievents.models import Event, Organization, Question, TicketType


class Status(models.TextChoices):
    OPEN = "open", "Open"
    PAYMENT_PENDING = "payment_pending", "Payment pending"
    PROCESSING = "processing", "Processing"
    AUTHORIZED = "authorized", "Authorized"
    PAID = "paid", "Paid"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    UNPAID = "unpaid", "Unpaid"
    EXPIRED = "expired", "Expired"
    CANCELED = "canceled", "Canceled"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"


class Source(models.TextChoices):
    ATTENDEE = "attendee", "Attendee"
    PROVIDER_WEBHOOK = "provider_webhook", "Provider webhook"
    RETURN_PAGE = "return_page", "Return page"
    ADMIN = "admin", "Admin"
    API = "api", "API"
    TIMER = "timer", "Timer"


class CheckoutSession(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="checkout_sessions")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="checkout_sessions")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "cs"), editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False, help_text="Grows with every transition.")

    customer_name = models.CharField(max_length=200, blank=True)
    customer_email = models.EmailField(blank=True)
    currency = models.CharField(max_length=3)
    amount_total = models.PositiveIntegerField(default=0, help_text="Minor units.")
    amount_paid = models.PositiveIntegerField(default=0, editable=False)
    amount_refunded = models.PositiveIntegerField(default=0, editable=False)

    expires_at = models.DateTimeField(help_text="When the inventory hold ends.")
    holds_released = models.BooleanField(default=False, editable=False)

    provider = models.CharField(max_length=20, blank=True, help_text="The payment provider the attendee chose.")
    success_url = models.URLField(max_length=2000, blank=True)
    cancel_url = models.URLField(max_length=2000, blank=True)
    webhook_url = models.URLField(max_length=2000, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    # The pre-payment gate's approval covers exactly these submitted details.
    gate_approved_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    gate_approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Grows each time the attendee's details are saved (under the row lock), so an approval
    # can be recorded in one conditional UPDATE: only if nobody changed them meanwhile.
    details_version = models.PositiveIntegerField(default=0, editable=False)

    # Who took the tickets, as checkout.limits counts them (an IPv4 address or an IPv6 /64);
    # empty for sessions opened through the API or from an exempt address.
    client_address = models.CharField(max_length=64, blank=True, default="", editable=False)

    # Reconciliation: money that arrived but could not be turned into tickets.
    needs_attention = models.CharField(max_length=300, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # The attendee's ticket email (checkout.services.send_confirmation): sent at least once.
    # A sender holds the lease while it sends; the sweep retries what was never marked sent.
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    confirmation_lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    # When the attendee's name, email and answers were replaced by a marker (ievents.erasure):
    # on request, or by the retention pass once the order was abandoned or its event long past.
    personal_data_erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            # The confirmation sweep: completed sessions whose email is not sent yet (few).
            models.Index(fields=["completed_at"], condition=models.Q(confirmation_sent_at__isnull=True),
                         name="session_unconfirmed"),
            # checkout.limits: one address's holds and recent checkouts for an event.
            models.Index(fields=["event", "client_address", "created_at"], condition=~models.Q(client_address=""),
                         name="session_client_recent"),
            # The admin's order list, newest first within an organization (a year holds millions).
            models.Index(fields=["organization", "-created_at"], name="session_org_recent"),
            # The retention pass: abandoned orders still holding a person, oldest change first.
            models.Index(fields=["updated_at"], condition=models.Q(personal_data_erased_at__isnull=True),
                         name="session_personal_data_kept"),
            models.Index(fields=["event"], condition=models.Q(personal_data_erased_at__isnull=True),
                         name="session_event_personal_data"),
            # Finding one attendee's orders (erasure, the admin's search by email) without
            # reading every order: case-insensitive, as emails are compared.
            models.Index(Upper("customer_email"), name="session_email_upper"),
        ]

    def __str__(self):
        return self.public_id

    @property
    def is_free(self) -> bool:
        return self.amount_total == 0


class LineItem(models.Model):
    """Tickets of one type in a session; while the session is live, also its inventory hold."""

    session = models.ForeignKey(CheckoutSession, on_delete=models.CASCADE, related_name="line_items")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT, related_name="line_items")
    quantity = models.PositiveIntegerField()
    unit_price = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.quantity} × {self.ticket_type.name}"

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


class Answer(models.Model):
    session = models.ForeignKey(CheckoutSession, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.PROTECT)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "question"], name="one_answer_per_question")]

    def __str__(self):
        return f"{self.question.text}: {self.value}"


TICKET_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols, none that read as another


def new_ticket_code() -> str:
    """12 symbols (60 random bits), as ``XXXX-XXXX-XXXX``. A random byte modulo 32 picks a
    symbol uniformly (256 is a multiple of 32): one read of the system's randomness per code,
    where ``secrets.choice`` made one per symbol."""
    raw = "".join(TICKET_CODE_ALPHABET[byte % 32] for byte in secrets.token_bytes(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


class Ticket(models.Model):
    """An admission issued when a session completes."""

    session = models.ForeignKey(CheckoutSession, on_delete=models.CASCADE, related_name="tickets")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT)
    code = models.CharField(max_length=20, unique=True, default=new_ticket_code)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when its order is refunded or canceled: the code no longer admits anyone.
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set with ``voided_at`` when the organizer put the ticket's seat back on sale; a voided
    # ticket without it keeps its seat off sale (the organizer's choice at the refund).
    back_on_sale = models.BooleanField(default=False, db_default=False, editable=False)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.code


class Transition(models.Model):
    """One applied state change: the session's history, read-only."""

    session = models.ForeignKey(CheckoutSession, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=Status.choices)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    trigger = models.CharField(max_length=30)
    source = models.CharField(max_length=20, choices=Source.choices)
    detail = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.from_status} → {self.to_status} ({self.trigger})"


class OrderAction(models.Model):
    """Something an organizer did to an order from the admin, and who did it.

    State changes (a refund, a cancellation) also have their ``Transition``; this row is the
    organizer's side of it, and the only record of the actions that change no state
    (resending the tickets, resolving a flag).
    """

    class Kind(models.TextChoices):
        REFUND = "refund", "Refund"
        CANCEL = "cancel", "Cancel order"
        RESEND = "resend", "Resend tickets"
        RESOLVE = "resolve", "Resolve"

    session = models.ForeignKey(CheckoutSession, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.CharField(max_length=300, help_text="What was done, in words.")
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "action taken"
        verbose_name_plural = "actions taken"

    def __str__(self):
        return self.summary


class ErasureRecord(models.Model):
    """One attendee's personal data erased on request (ievents.erasure): who asked, when,
    how many rows changed. The email is kept only as a hash, to answer "was I erased?"."""

    class Source(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"
        COMMAND = "command", "Command"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="erasures")
    email_sha256 = models.CharField(max_length=64, db_index=True, editable=False)
    source = models.CharField(max_length=10, choices=Source.choices, editable=False)
    requested_by = models.CharField(max_length=200, blank=True, editable=False,
                                    help_text="The admin user, API key prefix or command that asked.")
    rows = models.JSONField(default=dict, editable=False, help_text="Rows changed, per table.")
    rows_total = models.PositiveIntegerField(default=0, editable=False)
    erased_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self):
        return f"erasure {self.email_sha256[:12]}… at {self.erased_at:%Y-%m-%d %H:%M}"
