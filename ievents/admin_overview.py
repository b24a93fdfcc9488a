"""The admin's front page: what is selling, per upcoming event, in five queries.

``upcoming_overview(organization_ids)`` returns plain rows for the template; every figure
is aggregated in the database (annotate/values), none is read row by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from checkout.models import CheckoutSession, Status
from webhooks.models import Delivery, GateCall

from .models import Event, TicketType
from .money import format_money

# Orders whose tickets count as sold (money received and not wholly given back).
SOLD_STATUSES = (Status.PAID, Status.COMPLETED, Status.PARTIALLY_REFUNDED)
RECENT = timedelta(hours=24)
# An event stays on the overview for a day after it starts (the evening of the event).
STILL_UPCOMING = timedelta(days=1)
MAX_EVENTS = 20


@dataclass
class TicketTypeRow:
    name: str
    price: str
    quantity: int
    sold: int
    held: int
    available: int


@dataclass
class EventRow:
    event: Event
    revenue: str = "—"
    refunds: str = "—"
    orders: int = 0
    needs_attention: int = 0
    gate_denials: int = 0
    webhook_failures: int = 0
    ticket_types: list[TicketTypeRow] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


def _link(name: str, **query) -> str:
    return reverse(f"admin:{name}_changelist") + "?" + urlencode(query)


def _per_event(queryset, **aggregates) -> dict[int, dict]:
    return {row.pop("event_id"): row for row in queryset.values("event_id").annotate(**aggregates)}


def upcoming_overview(organization_ids: list[int] | None, now=None) -> list[EventRow]:
    """The upcoming events of these organizations (``None``: every organization)."""
    now = now or timezone.now()
    events = Event.objects.filter(starts_at__gte=now - STILL_UPCOMING).select_related("organization")
    if organization_ids is not None:
        events = events.filter(organization__in=organization_ids)
    events = list(events.order_by("starts_at")[:MAX_EVENTS])
    if not events:
        return []
    since = now - RECENT

    sold = Coalesce(Sum("line_items__quantity", filter=Q(line_items__session__status__in=SOLD_STATUSES)), 0)
    types = TicketType.objects.filter(event__in=events).annotate(sold=sold).order_by("event_id", "position", "id")
    orders = _per_event(
        CheckoutSession.objects.filter(event__in=events),
        orders=Count("pk", filter=~Q(status__in=[Status.OPEN, Status.EXPIRED, Status.CANCELED])),
        revenue=Coalesce(Sum("amount_paid"), 0), refunds=Coalesce(Sum("amount_refunded"), 0),
        needs_attention=Count("pk", filter=~Q(needs_attention="")),
    )
    denials = _per_event(GateCall.objects.filter(event__in=events, outcome=GateCall.Outcome.DENIED, is_test=False,
                                                 created_at__gte=since), count=Count("pk"))
    failures = {row["event__session__event_id"]: row["count"] for row in
                Delivery.objects.filter(event__session__event__in=events, status=Delivery.Status.FAILED,
                                        updated_at__gte=since)
                .values("event__session__event_id").annotate(count=Count("pk"))}

    rows = {event.pk: EventRow(event=event) for event in events}
    for tt in types:
        held = max(tt.reserved - tt.sold, 0)
        rows[tt.event_id].ticket_types.append(TicketTypeRow(
            name=tt.name, price=format_money(tt.price, rows[tt.event_id].event.currency), quantity=tt.quantity,
            sold=tt.sold, held=held, available=max(tt.quantity - tt.reserved, 0)))
    for event_id, row in rows.items():
        figures = orders.get(event_id, {})
        currency = row.event.currency
        row.orders = figures.get("orders", 0)
        row.revenue = format_money(figures.get("revenue", 0), currency)
        row.refunds = format_money(figures.get("refunds", 0), currency)
        row.needs_attention = figures.get("needs_attention", 0)
        row.gate_denials = denials.get(event_id, {}).get("count", 0)
        row.webhook_failures = failures.get(event_id, 0)
        row.links = {
            "event": reverse("admin:ievents_event_change", args=[event_id]),
            "orders": _link("checkout_checkoutsession", event__id__exact=event_id),
            "sold": _link("checkout_checkoutsession", event__id__exact=event_id, sold="yes"),
            "refunds": _link("checkout_checkoutsession", event__id__exact=event_id, refunded="yes"),
            "needs_attention": _link("checkout_checkoutsession", event__id__exact=event_id, attention="yes"),
            "gate_denials": _link("webhooks_gatecall", event__id__exact=event_id, outcome__exact="denied",
                                  created_at__gte=since.isoformat(timespec="seconds")),
            "webhook_failures": _link("webhooks_delivery", event__session__event__id__exact=event_id,
                                      status__exact="failed"),
        }
    return list(rows.values())

