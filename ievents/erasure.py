"""Erasing a person: their name, email and answers replaced by a marker wherever we keep them.

Two callers: an organizer erasing one attendee on request (the admin action, the API,
``manage.py erase_attendee``), recorded as an ``ErasureRecord``; and the retention pass
(``ievents.retention``) anonymising orders whose time is up. Amounts, tickets and history
stay: the order is still the organizer's accounts, without the person.

Where a person is kept, and what happens to it:

- the order: name → ``MARKER``, email → empty (nothing may be sent to it any more),
  ``metadata`` scrubbed; its answers → ``MARKER``;
- payments: their instructions (an MB WAY phone number, …) scrubbed;
- inbound provider messages about the order (and the organization's unmatched ones that
  name the email) → ``MARKER`` whole: a provider's payload holds billing details we cannot
  pick out reliably;
- gate calls: the client address dropped, the remote message scrubbed;
- outbound events: the order's ``customer`` and ``answers`` → ``MARKER`` leaf by leaf (the
  shape receivers parse is kept), so a delivery still pending sends the marker; response
  bodies and transition details scrubbed of the email and name.

"Scrubbed" means every occurrence of the email and of the name (3 characters or more),
in any case, replaced by the marker.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from checkout.models import Answer, AttendeeEmail, CheckoutSession, ErasureRecord, LineItem, Ticket, Transition
from payments.models import Payment
from webhooks.models import DeliveryAttempt, GateCall, InboundWebhook, OutboxEvent

from .models import Organization

MARKER = "[erased]"
# Keys of JSON payloads (ours and providers') whose values are the person, whatever they say.
PERSONAL_KEYS = frozenset({
    "customer", "answers", "customer_name", "customer_email", "customer_details", "billing_details",
    "email", "receipt_email", "phone", "mobile", "mobile_number",
    "invoice", "holders", "ticket_holders",  # checkout: invoice details, named tickets
})
SHORTEST_NAME_SCRUBBED = 3  # "Al" would turn every "Also" in a log into a marker


class ErasureError(Exception):
    """An erasure refused: the message says why, for people."""


def email_digest(organization: Organization, email: str) -> str:
    """What an erasure keeps of the email: enough to answer "was I erased?" (the same
    address gives the same digest), not the address. Salted with the organization."""
    return hashlib.sha256(f"{organization.public_id}:{email.strip().lower()}".encode()).hexdigest()


def erase_attendee(organization: Organization, email: str, *, source: str, requested_by: str = "") -> ErasureRecord:
    """Erase everything the organization keeps about the person with this email, and
    record it. Orders already erased are not found again; an erasure that finds nothing
    is recorded too (the request was answered)."""
    email = email.strip()
    if "@" not in email or len(email) > 254:
        raise ErasureError("Give the attendee's email address.")
    with transaction.atomic():
        orders = (CheckoutSession.objects.filter(organization=organization, customer_email__iexact=email)
                  .order_by("pk"))
        rows = _erase(orders, also=[email])
        unmatched = InboundWebhook.objects.filter(organization=organization, session__isnull=True,
                                                  payload__icontains=email)
        rows["inbound provider messages"] += unmatched.update(payload=MARKER)
        rows["attendee emails"] += AttendeeEmail.objects.filter(organization=organization, to__iexact=email).delete()[0]
        rows = {table: count for table, count in rows.items() if count}
        return ErasureRecord.objects.create(
            organization=organization, email_sha256=email_digest(organization, email), source=source,
            requested_by=requested_by[:200], rows=rows, rows_total=sum(rows.values()),
        )


def erase_orders(ids: list[int], still: Callable[[QuerySet], QuerySet] | None = None) -> int:
    """Anonymise these orders (the retention pass), in the caller's transaction. ``still``
    narrows them again under their row locks. Returns the rows changed."""
    orders = CheckoutSession.objects.filter(pk__in=ids, personal_data_erased_at__isnull=True)
    if still is not None:
        orders = still(orders)
    return sum(_erase(orders.order_by("pk")).values())


def _erase(orders: QuerySet, also: list[str] = ()) -> Counter:
    """Replace the people of ``orders`` by the marker everywhere; rows changed per table.
    The orders are locked first (the checkout's lock order: the session row first)."""
    locked = list(orders.select_for_update(of=("self",)).only("pk", "customer_name", "customer_email", "metadata"))
    rows: Counter = Counter()
    if not locked:
        return rows
    ids = [order.pk for order in locked]
    scrub = _scrubber([*also, *(o.customer_email for o in locked), *(o.customer_name for o in locked)])

    with_metadata = [order for order in locked if order.metadata]
    for order in with_metadata:
        order.metadata = _scrub_json(order.metadata, scrub)
    CheckoutSession.objects.bulk_update(with_metadata, ["metadata"])
    rows["orders"] = CheckoutSession.objects.filter(pk__in=ids).update(
        customer_name=MARKER, customer_email="", personal_data_erased_at=timezone.now(),
        invoice_name="", invoice_tax_id="", invoice_address="")
    rows.update(_erase_holders_and_emails(ids))
    rows["answers"] = Answer.objects.filter(session_id__in=ids).exclude(value=MARKER).update(value=MARKER)
    rows["payments"] = _rewrite(Payment.objects.filter(session_id__in=ids).exclude(instructions={}),
                                "instructions", lambda value: _scrub_json(value, scrub))
    rows["inbound provider messages"] = (InboundWebhook.objects.filter(session_id__in=ids).exclude(payload=MARKER)
                                         .update(payload=MARKER))
    rows["gate calls"] = _erase_gate_calls(ids, scrub)
    rows["outbound events"] = _rewrite(OutboxEvent.objects.filter(session_id__in=ids), "payload",
                                       lambda value: _scrub_json(value, scrub))
    rows["delivery attempts"] = _rewrite(
        DeliveryAttempt.objects.filter(delivery__event__session_id__in=ids).exclude(response_body=""),
        "response_body", scrub)
    rows["transitions"] = _rewrite(Transition.objects.filter(session_id__in=ids).exclude(detail=""), "detail", scrub)
    return rows


def _erase_holders_and_emails(ids: list[int]) -> Counter:
    """Named tickets' holders, and the emails to the attendee (their address and text)."""
    return Counter({
        "line items": LineItem.objects.filter(session_id__in=ids).exclude(holders=[]).update(holders=[]),
        "tickets": Ticket.objects.filter(session_id__in=ids).exclude(holder_name="", holder_email="").update(
            holder_name=MARKER, holder_email="", holder_answers={}),
        "attendee emails": AttendeeEmail.objects.filter(session_id__in=ids).delete()[0],
    })


def _erase_gate_calls(ids: list[int], scrub: Callable[[str], str]) -> int:
    """Addresses dropped in one statement; only calls with a message or error are read and
    rewritten (a busy order may have many calls, most of them silent)."""
    calls = GateCall.objects.filter(session_id__in=ids)
    addresses = calls.filter(client_ip__isnull=False).update(client_ip=None)
    with_text = calls.exclude(message="", error="")
    texts = _rewrite(with_text, "message", scrub) + _rewrite(with_text, "error", scrub)
    return max(addresses, texts)


def _rewrite(rows: QuerySet, field: str, change: Callable) -> int:
    """Apply ``change`` to ``field`` of each row; save the rows it changed; count them."""
    changed = []
    for row in rows.only("pk", field):
        new = change(getattr(row, field))
        if new != getattr(row, field):
            setattr(row, field, new)
            changed.append(row)
    rows.model.objects.bulk_update(changed, [field], batch_size=500)
    return len(changed)


def _scrubber(texts: list[str]) -> Callable[[str], str]:
    wanted = sorted({t.strip() for t in texts if len(t.strip()) >= SHORTEST_NAME_SCRUBBED}, key=len, reverse=True)
    if not wanted:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(t) for t in wanted), re.IGNORECASE)
    return lambda text: pattern.sub(MARKER, text) if text else text


def _scrub_json(value, scrub: Callable[[str], str], personal: bool = False):
    """``value`` with the person taken out: every string under a personal key becomes the
    marker, every other string is scrubbed; numbers, booleans and the shape are kept."""
    if isinstance(value, dict):
        return {key: _scrub_json(item, scrub, personal or key in PERSONAL_KEYS) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_json(item, scrub, personal) for item in value]
    if isinstance(value, str):
        return (MARKER if value else value) if personal else scrub(value)
    return value
