"""No hot path reads a large table from end to end (PostgreSQL, EXPLAIN).

The database holds a scaled-down year of the platform (bench/scale_data.py: orders in every
status, tickets, a hundred thousand delivery attempts, gate calls and provider messages,
shared among twenty organizations), its tables ANALYZEd. Each hot path runs once while its
SQL is captured: a gated *Continue*, a verified Stripe webhook, the delivery sweep and one
delivery, the admin's overview, order list, an order's page, the searches by email and by
ticket code, the CSV export of one event, a retention batch of every rule and one erasure.
Every statement that reads (SELECT, UPDATE, DELETE) is then EXPLAINed, and a plan with a
``Seq Scan`` on one of the large tables fails the test, naming the path and the statement;
the admin's searches for what people type whole (an email, a ticket code, a reference) must
not search by part (``LIKE``). What the admin reads of one event's orders grows with the
event, not the table (EXPLAIN ANALYZE): the export of a small event reads a few rows, the
overview's plans never loop once per order. The planner is left free (``enable_seqscan``
on): what is checked is the plan it chooses at this size, which at a year's size only gets
clearer.
"""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.scale_data import Scale, fill
from checkout.formatting import order_reference
from checkout.models import CheckoutSession, ErasureRecord, Ticket
from ievents.models import Event, Organization
from ievents.operations import erasure, retention
from ievents.operations.overview import MAX_EVENTS
from tests.admin.orders import make_order
from tests.conftest import make_event, make_organizer
from tests.payments.helpers import STRIPE_SECRET, checkout_object, configure, pending_session, post_stripe, stripe_event
from tests.servers import LocalServer, Reply
from webhooks import delivery
from webhooks.models import Delivery, GateSettings, WebhookEndpoint

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
LARGE_TABLES = {"checkout_checkoutsession", "checkout_lineitem", "checkout_ticket", "webhooks_outboxevent",
                "webhooks_delivery", "webhooks_deliveryattempt", "webhooks_gatecall", "webhooks_inboundwebhook"}
READS = ("SELECT", "UPDATE", "DELETE", "WITH")


@pytest.fixture
def year(organization):
    others = [Organization.objects.create(name=f"Organizer {n}", slug=f"organizer-{n}").pk for n in range(19)]
    with connection.cursor() as cursor:
        fill(cursor, [organization.pk, *others], Scale.year(0.02))
    return Event.objects.filter(organization=organization, public_id__startswith="ev_scale_").first()


def sequential_scans(plan: dict) -> set[str]:
    found = set()
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in LARGE_TABLES:
        found.add(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found |= sequential_scans(child)
    return found


def seq_scans_of(statements: list[str]) -> list[tuple[set[str], str]]:
    bad = []
    with connection.cursor() as cursor:
        for sql in statements:
            if not sql.lstrip().upper().startswith(READS):
                continue
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            raw = cursor.fetchone()[0]
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            scans = sequential_scans(plan)
            if scans:
                bad.append((scans, sql[:300]))
    return bad


class HotPaths:
    def __init__(self):
        self.statements: dict[str, list[str]] = {}

    def run(self, name, call):
        with CaptureQueriesContext(connection) as queries:
            result = call()
        self.statements[name] = [q["sql"] for q in queries.captured_queries]
        return result


def test_no_hot_path_scans_a_large_table(client, settings, organization, year):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    paths = HotPaths()
    ticket_type = year.ticket_types.get()
    configure(organization, "sandbox")
    with LocalServer(Reply(200, {})) as gate, LocalServer(Reply(200, {})) as receiver:
        GateSettings.objects.create(event=year, enabled=True, url=gate.url, timeout_ms=3000)
        WebhookEndpoint.objects.create(organization=organization, url=receiver.url, enabled_events=["*"])

        paths.run("POST tickets", lambda: client.post(year.get_absolute_url(), {f"qty_{ticket_type.public_id}": 1}))
        session = CheckoutSession.objects.filter(event=year).order_by("-id").first()
        response = paths.run("gated Continue", lambda: client.post(
            f"/c/{session.public_id}/", {"name": "Nora", "email": "nora@example.com"}, REMOTE_ADDR="10.1.1.1"))
        assert response.status_code == 302, response.content[:500]

        configure(organization, "stripe", secret=STRIPE_SECRET, credentials={"secret_key": "sk_test_x"})
        paying, _ = pending_session(year, provider="stripe", reference="cs_test_plan", quantity=1)
        response = paths.run("verified Stripe webhook", lambda: post_stripe(
            client, organization.public_id, stripe_event("checkout.session.completed", checkout_object(paying))))
        assert response.status_code == 200 and CheckoutSession.objects.get(pk=paying.pk).status == "completed"

        Delivery.objects.filter(event__session=paying).update(next_attempt_at=timezone.now() - timezone.timedelta(hours=1))
        paths.run("delivery sweep", lambda: delivery.overdue())
        due = Delivery.objects.filter(event__session=paying, status="pending").first()
        paths.run("one delivery", lambda: delivery.deliver(due.pk))
        assert Delivery.objects.get(pk=due.pk).status == "succeeded"

    client.force_login(make_organizer(organization))
    someone = CheckoutSession.objects.filter(organization=organization, public_id__startswith="cs_scale_").last()
    code = Ticket.objects.filter(session__organization=organization).last().code
    # The scale data's ids are "cs_scale_N"; the reference is searched on a real id (the gated order's).
    reference = order_reference(session.public_id).lower().replace("-", "")
    for name, query in [("admin order list", ""), ("admin search by email", f"?q={someone.customer_email}"),
                        ("admin search by ticket code", f"?q={code}"),
                        ("admin search by ticket code as typed", f"?q={code.lower().replace('-', '')}"),
                        ("admin search by the attendee's reference", f"?q={reference}")]:
        response = paths.run(name, lambda query=query: client.get(f"/admin/checkout/checkoutsession/{query}"))
        assert response.status_code == 200
    for name, path in [("admin overview", "/admin/"),
                       ("admin order page", f"/admin/checkout/checkoutsession/{someone.pk}/change/"),
                       ("admin CSV export of one event", f"/admin/checkout/checkoutsession/export/?event__id__exact={year.pk}")]:
        assert paths.run(name, lambda path=path: client.get(path)).status_code == 200

    # A batch is the same share of a table as in production: 1,000 rows of a year's millions
    # there, 20 of this year's tens of thousands here.
    now = timezone.now()
    for rule in retention.RULES:
        def one_batch(rule=rule):
            ids = list(rule.due(now).values_list("pk", flat=True)[:20])
            return retention.run_batch(rule, ids) if ids else 0
        paths.run(f"retention: {rule.name}", one_batch)
    paths.run("erasure", lambda: erasure.erase_attendee(organization, someone.customer_email,
                                                        source=ErasureRecord.Source.API))

    # What people type whole is looked up whole (an index's equality), never by part.
    for name in ("admin search by email", "admin search by ticket code", "admin search by ticket code as typed",
                 "admin search by the attendee's reference"):
        assert not [sql for sql in paths.statements[name] if " LIKE " in sql], name
    assert sum(len(statements) for statements in paths.statements.values()) > 50  # the capture worked
    found = {name: bad for name, statements in paths.statements.items() if (bad := seq_scans_of(statements))}
    assert found == {}, "\n\n".join(f"{name}: {scans} in {sql}" for name, bad in found.items() for scans, sql in bad)


def analyzed(statements: list[str]) -> list[dict]:
    """The plans PostgreSQL ran for these statements (EXPLAIN ANALYZE: they run again)."""
    plans = []
    with connection.cursor() as cursor:
        for sql in statements:
            if sql.lstrip().upper().startswith(READS):
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
                raw = cursor.fetchone()[0]
                plans.append((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])
    return plans


def nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


@pytest.fixture
def many_events(organization):
    """As on a year: more events than the planner keeps figures of one by one (it guesses an
    event's orders from the average), twenty of each organization. ``organization`` has one
    more, small, event of three orders, which is returned."""
    others = [Organization.objects.create(name=f"Organizer {n}", slug=f"organizer-{n}").pk for n in range(19)]
    small = make_event(organization, name="Small Fest")
    for n in range(3):
        make_order(small, email=f"small{n}@example.com")
    with connection.cursor() as cursor:
        fill(cursor, [organization.pk, *others], Scale(events=400, orders=20_000, gate_calls=100, inbound=100))
    return small


def test_one_events_export_reads_that_events_orders_not_the_organizations(client, organization, many_events):
    # The export of one event must find its orders as the event's, not among all the organization's.
    small, orders = many_events, list(many_events.checkout_sessions.all())
    assert CheckoutSession.objects.filter(organization=organization).count() > 100 * len(orders)
    client.force_login(make_organizer(organization))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/checkout/checkoutsession/export/?event__id__exact={small.pk}")
        content = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and all(order.public_id in content for order in orders)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'checkout_checkoutsession'")
        orders_table = {"checkout_checkoutsession", *(name for (name,) in cursor.fetchall())}
    read = [(node["Node Type"], node.get("Index Name") or node["Relation Name"], node["Actual Rows"])
            for plan in analyzed([q["sql"] for q in queries.captured_queries]) for node in nodes(plan)
            if {node.get("Index Name"), node.get("Relation Name")} & orders_table]
    assert read and [row for row in read if row[2] > 10 * len(orders)] == []


def test_the_overview_reads_no_order_one_by_one(admin_client, many_events):
    # Every organization's upcoming events (as a superuser sees them) and their thousand
    # orders: each step of a plan runs once, or once per event or ticket type, never once per
    # order or line item, and no plan reads the orders from end to end.
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/")
    assert response.status_code == 200
    shown = response.context["overview"]
    assert len(shown) == MAX_EVENTS and sum(row.paid_orders for row in shown) > 100
    statements = [q["sql"] for q in queries.captured_queries if '"checkout_' in q["sql"]]
    loops = [(node["Node Type"], node.get("Index Name") or node.get("Relation Name"), node["Actual Loops"])
             for plan in analyzed(statements) for node in nodes(plan)]
    assert loops and [loop for loop in loops if loop[2] > MAX_EVENTS] == []
    assert seq_scans_of(statements) == []


def test_the_check_sees_a_sequential_scan_when_there_is_one(year):
    # The detector itself: a search no index can answer must be reported.
    assert seq_scans_of(["SELECT id FROM webhooks_deliveryattempt WHERE duration_ms + 1 = 41 LIMIT 5"]) == [
        ({"webhooks_deliveryattempt"}, "SELECT id FROM webhooks_deliveryattempt WHERE duration_ms + 1 = 41 LIMIT 5")]
