"""Checkout sessions, what they hold, and their history.

``CheckoutSession.status`` is assigned only by ``checkout.state.apply``.
"""

import secrets
import unicodedata
from functools import partial

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Right, Upper
from django.utils.translation import gettext_lazy as _

from ievents.crypto import new_public_id
from ievents.models import Event, Organization, Question, TicketType


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    PAYMENT_PENDING = "payment_pending", _("Payment pending")
    PROCESSING = "processing", _("Processing")
    AUTHORIZED = "authorized", _("Authorized")
    PAID = "paid", _("Paid")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    UNPAID = "unpaid", _("Unpaid")
    EXPIRED = "expired", _("Expired")
    CANCELED = "canceled", _("Canceled")
    REFUNDED = "refunded", _("Refunded")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")


# The sets of statuses every feature asks about, defined once (``checkout.state`` moves an
# order between the statuses; these say what a status means for money, tickets and edits).
PAID_STATUSES = frozenset({Status.PAID, Status.COMPLETED, Status.PARTIALLY_REFUNDED})  # money held, not all refunded
WITH_VALID_TICKETS = frozenset({Status.COMPLETED, Status.PARTIALLY_REFUNDED})  # tickets that admit someone
WITH_ISSUED_TICKETS = WITH_VALID_TICKETS | {Status.REFUNDED}  # tickets were issued (a refund voids them)
EDITABLE_STATUSES = frozenset({Status.OPEN, Status.REJECTED, Status.UNPAID, Status.PAYMENT_PENDING})  # details may change


class Source(models.TextChoices):
    ATTENDEE = "attendee", _("Attendee")
    PROVIDER_WEBHOOK = "provider_webhook", _("Provider webhook")
    RETURN_PAGE = "return_page", _("Return page")
    ADMIN = "admin", _("Admin")
    API = "api", _("API")
    TIMER = "timer", _("Timer")


def search_key(text: str) -> str:
    """Text as the orders search compares it: accents dropped, case folded, spaces single
    ("  José  ÁVILA" → "jose avila"), so "Jose Avila" finds "José Ávila" and back."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.casefold().split())


class CheckoutSession(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="checkout_sessions")
    # Its index is ``session_event_figures`` (event first), not one of its own.
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="checkout_sessions", db_index=False)
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "cs"), editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False, help_text=_("Grows with every transition."))

    customer_name = models.CharField(max_length=200, blank=True)
    # ``search_key(customer_name)``, kept by ``save`` (and cleared by the erasure): what the
    # orders search matches a name against, with or without accents.
    search_name = models.CharField(max_length=200, blank=True, default="", db_default="", editable=False)
    customer_email = models.EmailField(blank=True)
    currency = models.CharField(max_length=3)
    amount_total = models.PositiveIntegerField(default=0, help_text=_("Minor units."))
    amount_paid = models.PositiveIntegerField(default=0, editable=False)
    amount_refunded = models.PositiveIntegerField(default=0, editable=False)

    expires_at = models.DateTimeField(help_text=_("When the inventory hold ends."))
    holds_released = models.BooleanField(default=False, editable=False)

    provider = models.CharField(max_length=20, blank=True, help_text=_("The payment provider the attendee chose."))
    success_url = models.URLField(max_length=2000, blank=True)
    cancel_url = models.URLField(max_length=2000, blank=True)
    webhook_url = models.URLField(max_length=2000, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The language the attendee bought in (one of settings.LANGUAGES): what is built for them
    # later (the gate's payload, notifications, emails, the CSV) uses the organizer's texts
    # in it, so it says what they saw.
    language = models.CharField(max_length=10, default="en", db_default="en", editable=False)

    # The pre-payment gate's approval covers exactly these submitted details.
    gate_approved_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    gate_approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Grows each time the attendee's details are saved (under the row lock), so an approval
    # can be recorded in one conditional UPDATE: only if nobody changed them meanwhile.
    details_version = models.PositiveIntegerField(default=0, editable=False)

    # Who took the tickets, as checkout.limits counts them (an IPv4 address or an IPv6 /64);
    # empty for sessions opened through the API or from an exempt address.
    address_key = models.CharField(max_length=64, blank=True, default="", editable=False)

    # The promo code the order was opened with (checkout.promo), and what it gave then. The
    # terms are a copy of the code at opening, so the discount stays what the attendee was
    # shown whatever the organizer changes later; ``promo_uses`` counts in ``PromoCode.used``
    # until ``promo_uses_released`` (the hold ended, or a refund gave them back).
    promo_code = models.ForeignKey("PromoCode", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="orders", editable=False)
    promo_code_text = models.CharField(max_length=40, blank=True, default="", db_default="", editable=False)
    promo_terms = models.JSONField(default=dict, db_default={}, blank=True, editable=False)
    promo_uses = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    promo_uses_released = models.BooleanField(default=False, db_default=False, editable=False)
    discount_total = models.PositiveIntegerField(default=0, db_default=0, editable=False, help_text=_("Minor units."))

    # Reconciliation: money that arrived but could not be turned into tickets.
    needs_attention = models.CharField(max_length=300, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # The reference the attendee is given (``checkout.formatting.order_reference``: "UGH-7V2")
    # without its dash, computed by the database from the id, so the orders search finds it
    # through an index whichever way the order was written.
    reference_key = models.GeneratedField(expression=Upper(Right("public_id", 6)),
                                          output_field=models.CharField(max_length=6), db_persist=True)

    # The attendee's ticket email (checkout.emails.send_confirmation): sent at least once.
    # A sender holds the lease while it sends; the sweep retries what was never marked sent.
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    confirmation_lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    # When the attendee's name, email and answers were replaced by a marker (ievents.operations.erasure):
    # on request, or by the retention pass once the order was abandoned or its event long past.
    personal_data_erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Invoice details, when the event asks for them (checkout.invoice): passed on to the
    # organizer's invoicing, never a certified invoice of ours. Erased with the attendee.
    invoice_name = models.CharField(max_length=200, blank=True, default="", db_default="")
    invoice_tax_id = models.CharField(max_length=20, blank=True, default="", db_default="",
                                      help_text=_("A Portuguese NIF, or another EU VAT number with its country prefix."))
    invoice_address = models.CharField(max_length=500, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            # The confirmation sweep: completed sessions whose email is not sent yet (few).
            models.Index(fields=["completed_at"], condition=models.Q(confirmation_sent_at__isnull=True),
                         name="session_unconfirmed"),
            # checkout.limits: one address's holds and recent checkouts for an event.
            models.Index(fields=["event", "address_key", "created_at"], condition=~models.Q(address_key=""),
                         name="session_client_recent"),
            # The admin's order list, newest first within an organization (a year holds millions).
            models.Index(fields=["organization", "-created_at"], name="session_org_recent"),
            # One event's orders in the admin (the list narrowed to an event, its CSV export):
            # read as the event's, not as the organization's ANDed with the event's.
            models.Index(fields=["organization", "event", "-created_at"], name="session_org_event_recent"),
            # The overview's figures per event (orders, money, promo codes, tickets sold) read
            # from the index alone: an upcoming event's orders are spread over the year's table,
            # one page each. (SQLite builds it without the included columns.)
            models.Index(fields=["event", "status"], name="session_event_figures",
                         include=["id", "amount_paid", "amount_refunded", "discount_total", "needs_attention",
                                  "promo_code_text"]),
            # The retention pass: abandoned orders still holding a person, oldest change first.
            models.Index(fields=["updated_at"], condition=models.Q(personal_data_erased_at__isnull=True),
                         name="session_personal_data_kept"),
            models.Index(fields=["event"], condition=models.Q(personal_data_erased_at__isnull=True),
                         name="session_event_personal_data"),
            # Finding one attendee's orders (erasure, the admin's search by email) without
            # reading every order: case-insensitive, as emails are compared.
            models.Index(Upper("customer_email"), name="session_email_upper"),
            # The orders search by the reference the attendee holds ("UGH-7V2").
            models.Index(fields=["reference_key"], name="session_reference_key"),
        ]

    def __str__(self):
        return self.public_id

    def save(self, *args, **kwargs):
        self.search_name = search_key(self.customer_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "customer_name" in update_fields and "search_name" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "search_name"]
        super().save(*args, **kwargs)

    @property
    def is_free(self) -> bool:
        return self.amount_total == 0


class LineItem(models.Model):
    """Tickets of one type in a session; while the session is live, also its inventory hold."""

    session = models.ForeignKey(CheckoutSession, on_delete=models.CASCADE, related_name="line_items")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT, related_name="line_items")
    quantity = models.PositiveIntegerField()
    unit_price = models.PositiveIntegerField(help_text=_("The list price of one ticket, minor units."))
    # What the order's promo code took off one ticket (checkout.promo.unit_discount), never
    # more than its price.
    unit_discount = models.PositiveIntegerField(default=0, db_default=0)
    # For a ticket type with a name on each ticket: one {"name", "email"} per ticket, in
    # order (checkout.holders); copied onto the tickets when they are issued.
    holders = models.JSONField(default=list, db_default=[], blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=models.Q(unit_discount__lte=models.F("unit_price")),
                                              name="discount_within_price")]

    def __str__(self):
        return f"{self.quantity} × {self.ticket_type.name}"

    @property
    def unit_amount(self) -> int:
        """What one ticket costs the attendee, after the discount."""
        return self.unit_price - self.unit_discount

    @property
    def list_amount(self) -> int:
        return self.quantity * self.unit_price

    @property
    def discount(self) -> int:
        return self.quantity * self.unit_discount

    @property
    def amount(self) -> int:
        """What the line costs the attendee, after the discount."""
        return self.quantity * self.unit_amount


def normalize_code(typed: str) -> str:
    """Codes are compared without case or surrounding spaces: ``spring-25 `` is ``SPRING-25``."""
    return (typed or "").strip().upper()


class PromoCode(models.Model):
    """A code an event's attendees type: a discount (percent or fixed, per ticket), access
    to hidden ticket types, or both, within its limits and dates. The rules are in
    ``checkout.promo``.

    ``used`` counts uses held by open orders and consumed by paid ones, as
    ``TicketType.reserved`` counts seats; it is written only by ``checkout.promo``'s
    conditional updates, and ``save()`` never writes it back.
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="promo_codes")
    public_id = models.CharField(max_length=40, unique=True, default=partial(new_public_id, "pc"), editable=False)
    code = models.CharField(
        max_length=40, help_text=_("What attendees type: 3 to 40 letters, digits, - or _, any case."),
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$",
                                   "Use 3 to 40 letters, digits, - or _, starting with a letter or digit.")],
    )
    percent_off = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("1 to 100 % off each ticket."))
    amount_off = models.PositiveIntegerField(null=True, blank=True,
                                             help_text=_("Off each ticket, minor units; never below zero."))
    ticket_types = models.ManyToManyField(TicketType, blank=True, related_name="+",
                                          help_text=_("The ticket types it applies to. None: every type."))
    reveals_ticket_types = models.ManyToManyField(TicketType, blank=True, related_name="revealed_by",
                                                  help_text=_("Hidden ticket types it shows and sells."))
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text=_("Tickets in all. Empty: no limit."))
    max_uses_per_order = models.PositiveIntegerField(null=True, blank=True,
                                                     help_text=_("Tickets in one order. Empty: no limit."))
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    uses_return_on_refund = models.BooleanField(
        default=True, verbose_name=_("a refunded order gives its uses back"),
        help_text=_("When a paid order is refunded in full or canceled, its uses can be taken again."),
    )
    used = models.PositiveIntegerField(default=0, editable=False, help_text=_("Held by open orders plus consumed."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["event", "code"], name="one_code_per_event"),
            models.CheckConstraint(condition=models.Q(max_uses__isnull=True) | models.Q(used__lte=models.F("max_uses")),
                                   name="no_code_overuse"),
            models.CheckConstraint(condition=models.Q(percent_off__isnull=True) | models.Q(amount_off__isnull=True),
                                   name="one_kind_of_discount"),
            models.CheckConstraint(condition=models.Q(percent_off__isnull=True) | models.Q(percent_off__gte=1,
                                                                                            percent_off__lte=100),
                                   name="percent_off_1_to_100"),
        ]

    def __str__(self):
        return self.code

    def save(self, *args, **kwargs):
        self.code = normalize_code(self.code)
        if self.pk is not None and kwargs.get("update_fields") is None:  # ids are the database's: set = saved
            # ``used`` moves under row locks while a form or an API call edits the code:
            # writing back the value it read would lose or invent uses.
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields if f.name not in ("id", "used")]
        super().save(*args, **kwargs)


class PromoCodeFailure(models.Model):
    """A code typed on an event's page that did not work: counted to slow down guessing."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    address_key = models.CharField(max_length=64)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["event", "at"], name="promo_failure_event_at")]


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
    # Who this ticket admits: its own holder when its type names each ticket, else the buyer.
    holder_name = models.CharField(max_length=200, blank=True, default="", db_default="")
    holder_email = models.EmailField(blank=True, default="", db_default="")
    # The holder's answers to the event's per-ticket questions: {question text: value}.
    holder_answers = models.JSONField(default=dict, db_default={}, blank=True)
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
        REFUND = "refund", _("Refund")
        CANCEL = "cancel", _("Cancel order")
        RESEND = "resend", _("Resend tickets")
        RESOLVE = "resolve", _("Resolve")

    session = models.ForeignKey(CheckoutSession, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.CharField(max_length=300, help_text=_("What was done, in words."))
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("action taken")
        verbose_name_plural = _("actions taken")

    def __str__(self):
        return self.summary


class ErasureRecord(models.Model):
    """One attendee's personal data erased on request (ievents.operations.erasure): who asked, when,
    how many rows changed. The email is kept only as a hash, to answer "was I erased?"."""

    class Source(models.TextChoices):
        ADMIN = "admin", _("Admin")
        API = "api", _("API")
        COMMAND = "command", _("Command")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="erasures")
    email_sha256 = models.CharField(max_length=64, db_index=True, editable=False)
    source = models.CharField(max_length=10, choices=Source.choices, editable=False)
    requested_by = models.CharField(max_length=200, blank=True, editable=False,
                                    help_text=_("The admin user, API key prefix or command that asked."))
    rows = models.JSONField(default=dict, editable=False, help_text=_("Rows changed, per table."))
    rows_total = models.PositiveIntegerField(default=0, editable=False)
    erased_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self):
        return f"erasure {self.email_sha256[:12]}… at {self.erased_at:%Y-%m-%d %H:%M}"


class AttendeeEmail(models.Model):
    """One email to an attendee about their order, written in the transaction of the change
    it tells (checkout.attendee_emails) and sent after the commit by a worker or the sweep,
    under a lease: never lost, never sent twice. ``key`` names the change it tells, so the
    same change queued twice is one row."""

    class Kind(models.TextChoices):
        TICKETS = "tickets", _("Tickets sent again")
        EMAIL_CHANGED = "email_changed", _("Address corrected (notice to the old one)")
        REFUND = "refund", _("Refund")
        CANCELED = "canceled", _("Order canceled")
        REMINDER = "reminder", _("Payment reminder")
        FLAGGED = "flagged", _("Order held for the organizer")
        RESOLVED = "resolved", _("Order resolved")
        ORDER_LINKS = "order_links", _("Links to their orders")

    # Empty only for Find my order asked on no organization's page: every organization's orders.
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(CheckoutSession, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="attendee_emails")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=120, unique=True, help_text=_("The change this email tells; one email each."))
    to = models.EmailField()
    language = models.CharField(max_length=10, blank=True, default="")
    params = models.JSONField(default=dict, blank=True, help_text=_("What the email says that the order does not."))
    # Who asked (Find my order): the client's address key, for its rate limit. Empty otherwise.
    address_key = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            # The sweep: what is not sent yet (few rows).
            models.Index(fields=["created_at"], condition=models.Q(sent_at__isnull=True), name="attendee_email_unsent"),
            # Find my order's rate limits: recent requests per address and per client.
            models.Index(fields=["kind", "to", "created_at"], name="attendee_email_recent_to"),
            models.Index(fields=["kind", "address_key", "created_at"], name="attendee_email_recent_client"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.to}"
