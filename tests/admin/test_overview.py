"""The admin's front page: per upcoming event, what sold, what is held, what needs the organizer."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checkout import services
from ievents.models import Event
from ievents.operations.overview import upcoming_overview
from tests.conftest import make_event
from webhooks.models import Delivery, GateCall, OutboxEvent

from .orders import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, organizer):
    client.force_login(organizer)
    return client


def test_the_front_page_shows_sold_held_and_available_per_ticket_type(admin_client, event, organization):
    make_order(event, quantity=3)
    make_order(event, quantity=1, attention="paid twice")
    services.create_session(event, [services.Item(event.ticket_types.get(), 2)])  # held, not paid
    GateCall.objects.create(event=event, outcome="denied", decision="deny", status_code=403)
    GateCall.objects.create(event=event, outcome="denied", decision="deny", status_code=403, is_test=True)
    outbox = OutboxEvent.objects.create(organization=organization, session=event.checkout_sessions.first(),
                                        type="checkout.session.completed", payload={})
    Delivery.objects.create(event=outbox, target_url="https://x.example/", status=Delivery.Status.FAILED)

    (row,) = upcoming_overview([organization.pk])
    (tt,) = row.ticket_types
    assert (tt.sold, tt.held, tt.available, tt.quantity) == (4, 2, 94, 100)
    assert (row.net_revenue, row.refunded, row.paid_orders) == ("€100.00", "€0.00", 2)
    assert (row.needs_attention, row.gate_denials, row.webhook_failures) == (1, 1, 1)

    html = admin_client.get("/admin/").content.decode()
    assert "Upcoming events" in html and "Summit" in html and "€100.00" in html
    assert f"/admin/checkout/checkoutsession/?event__id__exact={event.pk}&amp;attention=yes" in html


def test_every_link_on_the_overview_opens_its_filtered_list(admin_client, event, organization):
    make_order(event, attention="paid twice")
    (row,) = upcoming_overview([organization.pk])
    for name, url in row.links.items():
        response = admin_client.get(url)
        assert response.status_code == 200, (name, url)
        if "cl" in response.context:
            assert response.context["cl"].result_count >= 0
    attention = admin_client.get(row.links["needs_attention"]).context["cl"]
    assert attention.result_count == 1


def test_the_overview_takes_the_same_few_queries_for_one_event_or_many(organization):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            upcoming_overview([organization.pk])
        return len(captured)

    make_order(make_event(organization, name="One"))
    few = queries()
    for n in range(4):
        make_order(make_event(organization, name=f"More {n}"))
    assert queries() == few <= 6


def test_the_overview_shows_only_upcoming_events_of_the_organizers_organizations(admin_client, organization,
                                                                                  other_organization):
    make_event(organization, name="Coming")
    past = make_event(organization, name="Long gone")
    Event.objects.filter(pk=past.pk).update(starts_at=timezone.now() - timedelta(days=3))
    make_order(make_event(other_organization, name="Their Gala"))
    html = admin_client.get("/admin/").content.decode()
    assert "Coming" in html and "Long gone" not in html and "Their Gala" not in html


def test_a_viewer_sees_the_overview_too(client, organization, event):
    from ievents.models import Membership
    from tests.conftest import make_organizer

    user = make_organizer(organization, username="vera")
    Membership.objects.filter(user=user).update(role="viewer")
    client.force_login(user)
    assert "Summit" in client.get("/admin/").content.decode()


def test_each_figure_is_what_its_link_lists_and_what_the_export_holds(admin_client, event, organization):
    """Paid, partly refunded, refunded, cancelled (with and without late money), open and
    expired orders: each overview figure equals the count or sums of the list its link opens,
    and of the export of that list."""
    import csv
    import io
    from decimal import Decimal

    from checkout.models import CheckoutSession

    def order(status, *, paid=0, refunded=0, tickets=2, voided=0, attention=""):
        made = make_order(event, quantity=2)
        CheckoutSession.objects.filter(pk=made.pk).update(status=status, amount_paid=paid, amount_refunded=refunded,
                                                          needs_attention=attention)
        made.tickets.filter(pk__in=list(made.tickets.values_list("pk", flat=True)[tickets:])).delete()
        made.tickets.filter(pk__in=list(made.tickets.values_list("pk", flat=True)[:voided])).update(
            voided_at=timezone.now())
        return made

    order("completed", paid=5000)
    order("partially_refunded", paid=5000, refunded=2500, voided=1)
    order("refunded", paid=5000, refunded=5000, voided=2)
    order("canceled", tickets=0)
    order("canceled", paid=2500, tickets=0, attention="paid after it was cancelled: refund needed")
    order("open", tickets=0)
    order("expired", tickets=0)

    (row,) = upcoming_overview([organization.pk])
    assert (row.paid_orders, row.net_revenue, row.refunded, row.refunded_orders, row.canceled_orders,
            row.needs_attention) == (2, "€100.00", "€75.00", 2, 2, 1)
    page = admin_client.get("/admin/").content.decode()
    for words in ("Paid orders", "Net revenue", "Refunded", "Cancelled", "€100.00", "€75.00"):
        assert words in page

    def listed(link):
        response = admin_client.get(link)
        (totals,) = response.context["order_totals"]
        assert response.context["cl"].result_count == totals.orders
        assert f"{totals.orders} order" in response.content.decode() and f"net {totals.net}" in response.content.decode()
        return totals

    def exported(link) -> tuple[int, Decimal, Decimal]:
        query = link.split("?", 1)[1]
        response = admin_client.get("/admin/checkout/checkoutsession/export/?" + query)
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        money = lambda column: sum(Decimal(r[column]) for r in rows if r[column])  # noqa: E731
        return len({r["Order id"] for r in rows}), money("Order paid"), money("Order refunded")

    assert listed(row.links["paid_orders"]).orders == row.paid_orders == exported(row.links["paid_orders"])[0]
    net = listed(row.links["net_revenue"])
    assert (net.net, net.net_minor) == (row.net_revenue, row.net_revenue_minor) == ("€100.00", 10000)
    count, paid, refunded = exported(row.links["net_revenue"])
    assert (count, paid - refunded) == (net.orders, Decimal("100.00"))
    refunds = listed(row.links["refunded"])
    assert (refunds.refunded, refunds.orders) == (row.refunded, row.refunded_orders)
    assert exported(row.links["refunded"])[2] == Decimal("75.00")
    assert listed(row.links["canceled_orders"]).orders == row.canceled_orders == exported(
        row.links["canceled_orders"])[0]
    assert listed(row.links["needs_attention"]).orders == row.needs_attention
    # Void tickets are marked so in the export, the live ones valid.
    rows = list(csv.DictReader(io.StringIO(b"".join(admin_client.get(
        "/admin/checkout/checkoutsession/export/").streaming_content).decode("utf-8-sig"), newline="")))
    assert sorted(r["Ticket"] for r in rows if r["Ticket code"]) == ["Valid"] * 3 + ["Void"] * 3
