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
  bodies and transition details scrubbed of the email and name;
- the order's own words about it: the organizer's actions (summaries such as "Email
  corrected from x to y", notes), refund notes, and its ``success_url``, ``cancel_url``
  and ``webhook_url`` (a shop may put the email in its return address) scrubbed;
- provider messages nobody matched to an order, the organization's and the platform
  route's (no organization), that hold one of the addresses in any encoding → ``MARKER``;
- the attendee's typed details kept in a browser session (``checkout.drafts``) dropped.

"Scrubbed" means every occurrence of the name (3 characters or more) and of *every address
the order ever had* (the current one, the one asked for, and any its history names, such
as the one an organizer corrected) in each way it is written — plain, URL-encoded,
JSON-escaped — in any case, replaced by the marker. The idempotency store never holds an
answer in clear (``ievents.idempotency``), and a replay of an erased order's creation is
refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus, unquote

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from checkout import drafts
from checkout.models import (
    Answer,
    AttendeeEmail,
    CheckoutSession,
    ErasureRecord,
    LineItem,
    OrderAction,
    Ticket,
    Transition,
)
from payments.models import Payment, Refund
from webhooks.models import Delivery, DeliveryAttempt, GateCall, InboundWebhook, OutboxEvent

from .models import Organization

MARKER = "[erased]"
# Keys of JSON payloads (ours and providers') whose values are the person, whatever they say.
PERSONAL_KEYS = frozenset({
    "customer", "answers", "customer_name", "customer_email", "customer_details", "billing_details",
    "email", "receipt_email", "phone", "mobile", "mobile_number",
    "invoice", "holders", "ticket_holders",  # checkout: invoice details, named tickets
})
SHORTEST_NAME_SCRUBBED = 3  # "Al" would turn every "Also" in a log into a marker
# An address as it is written in an order's history ("… from ana@old.pt to …"), plain or
# URL-encoded (``%40``): the addresses an order once had, beyond the one it has now.
# (No "=", "&", "?" or "/" in the local part: in a URL they end the parameter before it.)
# Not after "by ": that is the organizer who acted ("Refunded by olga@acme.test"), whose
# login may be an email, not the attendee.
BY_THE_ORGANIZER = r"(?<!by )"
ADDRESS = re.compile(BY_THE_ORGANIZER + r"(?<![\w.!#$%'*+^`{|}~-])[\w.!#$%'*+^`{|}~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+",
                     re.IGNORECASE)


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
        # The orders with this address now, and those an organizer corrected away from it.
        # (The database narrows by substring; the whole address decides: "ana@x.pt" is in
        # "joana@x.pt" too.)
        whole = re.compile(BY_THE_ORGANIZER + _finder(encodings([email])).pattern, re.IGNORECASE)
        corrected = [session_id for session_id, summary in OrderAction.objects.filter(
            session__organization=organization, summary__icontains=email).values_list("session_id", "summary")
            if whole.search(summary)]
        orders = (CheckoutSession.objects.filter(Q(customer_email__iexact=email) | Q(pk__in=corrected),
                                                 organization=organization)
                  .order_by("pk"))
        rows, addresses = _erase(orders, also=[email])
        addresses.add(email.lower())
        # Messages matched to no order: this organization's, and the platform route's (no
        # organization yet: a duplicate or an unknown account) that name the person.
        unmatched = InboundWebhook.objects.filter(Q(organization=organization) | Q(organization__isnull=True),
                                                  session__isnull=True).exclude(payload=MARKER)
        naming = Q()
        for written in sorted(encodings(addresses)):
            naming |= Q(payload__icontains=written)
        whole = _finder(encodings(addresses))
        theirs = [pk for pk, payload in unmatched.filter(naming).values_list("pk", "payload") if whole.search(payload)]
        rows["inbound provider messages"] += InboundWebhook.objects.filter(pk__in=theirs).update(payload=MARKER)
        rows["attendee drafts"] += drafts.forget_addresses(addresses)
        to_them = Q()
        for address in addresses:
            to_them |= Q(to__iexact=address)
        rows["attendee emails"] += AttendeeEmail.objects.filter(to_them, organization=organization).delete()[0]
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
    rows, _ = _erase(orders.order_by("pk"))
    return sum(rows.values())


def encodings(addresses: Iterable[str]) -> set[str]:
    """Each address as it may be written: plain, URL-encoded (``%40``, ``%2B``, ``+``) and
    JSON-escaped (``\\u00e9``); matched case-insensitively, so lower and upper case too."""
    written = set()
    for address in addresses:
        written |= {address, quote(address, safe=""), quote(address, safe="@"), quote_plus(address),
                    json.dumps(address)[1:-1], json.dumps(address, ensure_ascii=False)[1:-1]}
    return {text for text in written if text}


def _addresses_in_history(ids: list[int]) -> set[str]:
    """Every address the orders' own records name: corrected emails, notes, details, URLs."""
    texts = [
        *OrderAction.objects.filter(session_id__in=ids).values_list("summary", "note"),
        *Refund.objects.filter(session_id__in=ids).exclude(note="").values_list("note", flat=True),
        *Transition.objects.filter(session_id__in=ids).exclude(detail="").values_list("detail", flat=True),
        *CheckoutSession.objects.filter(pk__in=ids).values_list("success_url", "cancel_url", "webhook_url"),
    ]
    flat = " ".join(" ".join(t) if isinstance(t, tuple) else t for t in texts)
    return {unquote(match.group(0)).lower() for match in ADDRESS.finditer(flat)}


def _phones(ids: list[int]) -> set[str]:
    """The phone numbers the orders' payments were made with (MB WAY), to scrub from notes."""
    phones = set()
    for instructions in Payment.objects.filter(session_id__in=ids).exclude(instructions={}).values_list(
            "instructions", flat=True):
        if isinstance(instructions, dict):
            phones |= {str(instructions[key]) for key in ("phone", "mobile", "mobile_number") if instructions.get(key)}
    return phones


def _erase(orders: QuerySet, also: list[str] = ()) -> tuple[Counter, set[str]]:
    """Replace the people of ``orders`` by the marker everywhere: the rows changed per table,
    and every address the orders ever had (in lower case).
    The orders are locked first (the checkout's lock order: the session row first)."""
    locked = list(orders.select_for_update(of=("self",)).only("pk", "customer_name", "customer_email", "metadata"))
    rows: Counter = Counter()
    if not locked:
        return rows, set()
    ids = [order.pk for order in locked]
    addresses = {a.strip().lower() for a in [*also, *(o.customer_email for o in locked)] if a.strip()}
    addresses |= _addresses_in_history(ids)
    scrub = _scrubber([*encodings(addresses), *(o.customer_name for o in locked), *_phones(ids)])

    with_metadata = [order for order in locked if order.metadata]
    for order in with_metadata:
        order.metadata = _scrub_json(order.metadata, scrub)
    CheckoutSession.objects.bulk_update(with_metadata, ["metadata"])
    rows["orders"] = CheckoutSession.objects.filter(pk__in=ids).update(
        customer_name=MARKER, search_name="", customer_email="", personal_data_erased_at=timezone.now(),
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
    for field in ("summary", "note"):
        rows["actions taken"] += _rewrite(OrderAction.objects.filter(session_id__in=ids), field, scrub)
    rows["refunds"] = _rewrite(Refund.objects.filter(session_id__in=ids).exclude(note=""), "note", scrub)
    # Addresses the shop or the provider built around the person (counted with the orders).
    for model, filters, fields in [(CheckoutSession, {"pk__in": ids}, ("success_url", "cancel_url", "webhook_url")),
                                   (Payment, {"session_id__in": ids}, ("redirect_url",)),
                                   (Delivery, {"event__session_id__in": ids}, ("target_url", "last_error"))]:
        for field in fields:
            _rewrite(model.objects.filter(**filters).exclude(**{field: ""}), field, scrub)
    rows["delivery attempts"] += _rewrite(
        DeliveryAttempt.objects.filter(delivery__event__session_id__in=ids).exclude(error=""), "error", scrub)
    return rows, addresses


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
    addresses = calls.filter(Q(client_ip__isnull=False) | ~Q(address_key="")).update(client_ip=None, address_key="")
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


def _finder(texts: Iterable[str]) -> re.Pattern | None:
    """A case-insensitive search for any of ``texts`` standing whole: not inside a longer
    address or word ("ana@x.pt" is not found in "joana@x.pt", "Ana Silva" not in "Joana
    Silva"). None when there is nothing (long enough) to look for."""
    wanted = sorted({t.strip() for t in texts if len(t.strip()) >= SHORTEST_NAME_SCRUBBED}, key=len, reverse=True)
    if not wanted:
        return None
    return re.compile(r"(?<![\w.+%-])(?:" + "|".join(re.escape(t) for t in wanted) + r")(?![\w-])", re.IGNORECASE)


def _scrubber(texts: list[str]) -> Callable[[str], str]:
    pattern = _finder(texts)
    if pattern is None:
        return lambda text: text
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
