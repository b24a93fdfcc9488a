"""The admin's front page: what is selling, per upcoming event, in six queries.

``upcoming_overview(organization_ids)`` returns plain rows for the template; every figure
is aggregated in the database (annotate/values), none is read row by row.

Each figure is named for what it counts and links to exactly the orders it counts, whose
list shows the same count and sums (``order_totals``, under the orders list):

- **Paid orders**: orders paid and not wholly refunded (``PAID_STATUSES``) → ``?sold=yes``.
- **Net revenue**: money received minus money refunded, over the orders that received money
  → ``?money=received`` (the list's "Net").
- **Refunded**: money given back, over the orders with a refund → ``?refunded=yes``.
- **Cancelled**: orders cancelled (by the organizer or the attendee) → ``?status__exact=canceled``.
- **Need attention**: orders flagged for the organizer → ``?attention=yes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from checkout.models import PAID_STATUSES, CheckoutSession, LineItem, Status
from webhooks.models import Delivery, GateCall

from ..admin_time import local_text
from ..models import Event, TicketType
from ..money import format_money

# Orders whose tickets count as sold (money received and not wholly given back).
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
    starts: str = ""
    paid_orders: int = 0
    net_revenue: str = "—"
    refunded: str = "—"
    refunded_orders: int = 0
    canceled_orders: int = 0
    needs_attention: int = 0
    # The money figures in minor units, for code that compares them (tests, invariants).
    net_revenue_minor: int = 0
    refunded_minor: int = 0
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

    types = list(TicketType.objects.filter(event__in=events).order_by("event_id", "position", "id"))
    # Tickets sold per type: the line items of the paid orders. The orders are named by their
    # events as well as through the types, so their statuses are read from the index of the
    # events' orders (``session_event_figures``), not order by order across the whole table.
    sold = dict(LineItem.objects.filter(ticket_type__in=types, session__event__in=events,
                                        session__status__in=PAID_STATUSES)
                .values("ticket_type_id").annotate(sold=Sum("quantity")).values_list("ticket_type_id", "sold"))
    orders = _per_event(
        CheckoutSession.objects.filter(event__in=events),
        paid_orders=Count("pk", filter=Q(status__in=PAID_STATUSES)),
        received=Coalesce(Sum("amount_paid"), 0), refunded=Coalesce(Sum("amount_refunded"), 0),
        refunded_orders=Count("pk", filter=Q(amount_refunded__gt=0)),
        canceled_orders=Count("pk", filter=Q(status=Status.CANCELED)),
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
        tickets_sold = sold.get(tt.pk, 0)
        rows[tt.event_id].ticket_types.append(TicketTypeRow(
            name=tt.name, price=format_money(tt.price, rows[tt.event_id].event.currency), quantity=tt.quantity,
            sold=tickets_sold, held=max(tt.reserved - tickets_sold, 0), available=max(tt.quantity - tt.reserved, 0)))
    for event_id, row in rows.items():
        figures = orders.get(event_id, {})
        currency = row.event.currency
        row.starts = local_text(row.event.starts_at, row.event.timezone)  # on the event's clock, as attendees read it
        row.paid_orders = figures.get("paid_orders", 0)
        row.net_revenue = format_money(figures.get("received", 0) - figures.get("refunded", 0), currency)
        row.refunded = format_money(figures.get("refunded", 0), currency)
        row.refunded_orders = figures.get("refunded_orders", 0)
        row.net_revenue_minor = figures.get("received", 0) - figures.get("refunded", 0)
        row.refunded_minor = figures.get("refunded", 0)
        row.canceled_orders = figures.get("canceled_orders", 0)
        row.needs_attention = figures.get("needs_attention", 0)
        row.gate_denials = denials.get(event_id, {}).get("count", 0)
        row.webhook_failures = failures.get(event_id, 0)
        row.links = {
            "event": reverse("admin:ievents_event_change", args=[event_id]),
            "orders": _link("checkout_checkoutsession", event__id__exact=event_id),
            "paid_orders": _link("checkout_checkoutsession", event__id__exact=event_id, sold="yes"),
            "net_revenue": _link("checkout_checkoutsession", event__id__exact=event_id, money="received"),
            "refunded": _link("checkout_checkoutsession", event__id__exact=event_id, refunded="yes"),
            "canceled_orders": _link("checkout_checkoutsession", event__id__exact=event_id, status__exact="canceled"),
            "needs_attention": _link("checkout_checkoutsession", event__id__exact=event_id, attention="yes"),
            "gate_denials": _link("webhooks_gatecall", event__id__exact=event_id, outcome__exact="denied",
                                  created_at__gte=since.isoformat(timespec="seconds")),
            "webhook_failures": _link("webhooks_delivery", event__session__event__id__exact=event_id,
                                      status__exact="failed"),
        }
    return list(rows.values())



@dataclass
class OrderTotals:
    """What a list of orders adds up to, in one currency: the figures the overview links to."""

    currency: str
    orders: int
    received: str
    refunded: str
    net: str
    received_minor: int = 0
    refunded_minor: int = 0

    @property
    def net_minor(self) -> int:
        return self.received_minor - self.refunded_minor


def order_totals(orders) -> list[OrderTotals]:
    """The count and money of ``orders`` (a queryset of checkout sessions), per currency, in
    one query: shown under the orders list, so each overview figure can be checked against
    the list its link opens."""
    rows = (orders.order_by().values("currency")
            .annotate(count=Count("pk"), received=Coalesce(Sum("amount_paid"), 0),
                      refunded=Coalesce(Sum("amount_refunded"), 0))
            .order_by("currency"))
    return [OrderTotals(currency=row["currency"], orders=row["count"],
                        received=format_money(row["received"], row["currency"]),
                        refunded=format_money(row["refunded"], row["currency"]),
                        net=format_money(row["received"] - row["refunded"], row["currency"]),
                        received_minor=row["received"], refunded_minor=row["refunded"]) for row in rows]
