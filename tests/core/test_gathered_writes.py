"""Gathered writes (``ievents.writes``): what a flush writes is what the ORM calls it stands
for would write, in one statement on PostgreSQL; a failure writes nothing."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from checkout.models import CheckoutSession, Status, Ticket, Transition
from ievents import writes
from webhooks.models import Delivery, OutboxEvent, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)


def _on_postgres() -> bool:
    return connection.vendor == "postgresql"


def _statements(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]


def test_a_flush_writes_inserts_updates_and_rows_pointing_at_rows_inserted_with_them(open_session, organization):
    endpoint = WebhookEndpoint.objects.create(organization=organization, url="https://example.com/hook",
                                              enabled_events=["*"])
    events = [OutboxEvent(organization=organization, session=open_session, type=f"test.{n}", payload={"n": n})
              for n in range(2)]
    deliveries = [Delivery(event=event, endpoint=endpoint, target_url=endpoint.url) for event in reversed(events)]
    open_session.customer_name = "Ana Gathered"
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        batch = writes.Writes()
        batch.insert(events)
        batch.update(open_session, ["customer_name", "updated_at"])
        batch.insert(deliveries)
        batch.insert([Transition(session=open_session, from_status=Status.OPEN, to_status=Status.OPEN,
                                 trigger="test", source="admin")])
        assert all(e.pk is None for e in events)  # nothing is written before the flush
        batch.flush()

    assert len(_statements(queries)) == (1 if _on_postgres() else 4)  # elsewhere: one per write
    assert [e.pk for e in events] == list(OutboxEvent.objects.filter(type__startswith="test.")
                                          .order_by("id").values_list("id", flat=True))
    # Each delivery points at its own event, though their ids were unknown when written.
    assert [d.event_id for d in deliveries] == [events[1].pk, events[0].pk]
    assert {d.pk: d.event_id for d in deliveries} == dict(Delivery.objects.values_list("id", "event_id"))
    assert all(not obj._state.adding for obj in [*events, *deliveries])
    stored = Delivery.objects.get(pk=deliveries[0].pk)
    assert (stored.status, stored.attempts_count, stored.public_id) == ("pending", 0, deliveries[0].public_id)
    assert OutboxEvent.objects.get(pk=events[1].pk).payload == {"n": 1}
    open_session.refresh_from_db()
    assert open_session.customer_name == "Ana Gathered"


def test_updates_of_one_instance_are_merged_into_one_with_the_values_at_the_flush(open_session):
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        batch = writes.Writes()
        batch.update(open_session, ["customer_name"])
        open_session.customer_name = "Second value"
        open_session.customer_email = "merged@example.com"
        batch.update(open_session, ["customer_email"])
        batch.flush()
    updates = [sql for sql in _statements(queries) if "checkout_checkoutsession" in sql]
    assert len(updates) == 1  # two updates of one row in one statement: PostgreSQL would keep only one
    row = CheckoutSession.objects.values("customer_name", "customer_email").get(pk=open_session.pk)
    assert row == {"customer_name": "Second value", "customer_email": "merged@example.com"}


def test_an_update_of_a_row_that_is_gone_raises_and_writes_nothing(open_session, organization):
    ghost = CheckoutSession.objects.get(pk=open_session.pk)
    CheckoutSession.objects.filter(pk=open_session.pk).delete()
    before = OutboxEvent.objects.count()
    with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():
        batch = writes.Writes()
        batch.insert([OutboxEvent(organization=organization, type="test.orphan", payload={})])
        ghost.customer_name = "nobody"
        batch.update(ghost, ["customer_name"])
        batch.flush()
    assert OutboxEvent.objects.count() == before


def test_a_failing_write_takes_the_others_with_it(open_session, ticket_type):
    taken = Ticket.objects.create(session=open_session, ticket_type=ticket_type)
    open_session.customer_name = "Must not stay"
    with pytest.raises(IntegrityError), transaction.atomic():
        batch = writes.Writes()
        batch.update(open_session, ["customer_name"])
        batch.insert([Ticket(session=open_session, ticket_type=ticket_type),
                      Ticket(session=open_session, ticket_type=ticket_type, code=taken.code)])
        batch.flush()
    assert CheckoutSession.objects.get(pk=open_session.pk).customer_name != "Must not stay"
    assert Ticket.objects.filter(session=open_session).count() == 1


def test_gathering_joins_the_enclosing_block_and_writes_when_it_ends(open_session):
    with transaction.atomic():
        with writes.gathering() as outer:
            with writes.gathering() as inner:
                assert inner is outer
                open_session.customer_name = "Written by the outer block"
                inner.update(open_session, ["customer_name"])
            assert CheckoutSession.objects.get(pk=open_session.pk).customer_name != "Written by the outer block"
        assert CheckoutSession.objects.get(pk=open_session.pk).customer_name == "Written by the outer block"


def test_a_block_that_raises_writes_nothing(open_session):
    with pytest.raises(RuntimeError), writes.gathering() as batch:
        open_session.customer_name = "Never written"
        batch.update(open_session, ["customer_name"])
        raise RuntimeError("the caller gave up")
    assert CheckoutSession.objects.get(pk=open_session.pk).customer_name != "Never written"
    with writes.gathering() as fresh:  # and the next block starts empty
        fresh.flush()


def test_a_row_pointing_at_an_unsaved_instance_written_elsewhere_is_refused(open_session, organization):
    unsaved = OutboxEvent(organization=organization, session=open_session, type="test.unsaved", payload={})
    batch = writes.Writes()
    batch.insert([Delivery(event=unsaved, target_url="https://example.com/")])
    with pytest.raises(ValueError, match="unsaved|not saved"), transaction.atomic():
        batch.flush()
    assert not Delivery.objects.exists()


def test_one_insert_takes_one_model(open_session, organization):
    with pytest.raises(ValueError, match="one model"):
        writes.Writes().insert([OutboxEvent(organization=organization, type="x", payload={}),
                                Transition(session=open_session, from_status="open", to_status="open",
                                           trigger="t", source="admin")])


def test_a_completion_writes_everything_in_one_statement_on_postgres(open_session, organization):
    """The state machine's pay → complete: session, transitions, tickets, events and their
    deliveries, with the endpoints read with the session's rows."""
    from checkout import services, state

    WebhookEndpoint.objects.create(organization=organization, url="https://example.com/hook", enabled_events=["*"])
    state.apply(open_session.pk, "start_payment", "attendee", detail="sandbox")
    with CaptureQueriesContext(connection) as queries:
        services.record_payment_succeeded(open_session.pk, amount=None, currency="", source="provider_webhook")
    statements = _statements(queries)
    writes_ = [sql for sql in statements if not sql.startswith("SELECT")]
    if _on_postgres():
        assert len(writes_) == 1 and writes_[0].startswith("WITH"), "\n".join(statements)
    session = CheckoutSession.objects.get(pk=open_session.pk)
    assert session.status == Status.COMPLETED and session.tickets.count() == 2
    events = list(OutboxEvent.objects.filter(session=session).order_by("id"))
    assert [e.type for e in events][-2:] == ["checkout.session.paid", "checkout.session.completed"]
    assert sorted(events[-1].payload["data"]["object"]["tickets"]) == sorted(session.tickets.values_list("code",
                                                                                                         flat=True))
    assert Delivery.objects.filter(event__in=events[-2:]).count() == 2


def test_a_sold_out_late_payment_inside_gathered_writes_returns_the_session_as_written(open_session, ticket_type):
    """A webhook gathers what it writes; the late payment that finds its tickets gone reads
    the session back to return it, and must see itself paid, not the row before the flush."""
    from checkout import services

    CheckoutSession.objects.filter(pk=open_session.pk).update(holds_released=True)
    type(ticket_type).objects.filter(pk=ticket_type.pk).update(reserved=ticket_type.quantity)  # sold out meanwhile
    with transaction.atomic(), writes.gathering():
        returned = services.record_payment_succeeded(open_session.pk, amount=5000, currency="EUR",
                                                     source="provider_webhook")
        assert returned.status == Status.PAID and returned.needs_attention.startswith("paid after the hold")
    assert CheckoutSession.objects.get(pk=open_session.pk).status == Status.PAID
