"""The state machine's locking read, written out on PostgreSQL (``state.lock``,
``state.lock_by_public_id``): the same session as the ORM's read, and the rows an
announcement lists read with the lock, never older than the lock."""

import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction

from checkout import services, state
from checkout.models import CheckoutSession
from checkout.representation import session_as_api
from webhooks.models import WebhookEndpoint

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def answered(event, ticket_type):
    session = services.create_session(event, [services.Item(ticket_type, 2)], customer_email="ana@example.com")
    questions = list(event.questions.order_by("position"))
    return services.save_attendee_details(session, name="Ana", email="ana@example.com",
                                          answers={questions[0].pk: "Acme", questions[1].pk: "M"})


def test_the_written_out_read_gives_the_session_the_orm_gives(answered):
    with transaction.atomic():
        by_id = state.lock(answered.pk)
        by_public_id = state.lock_by_public_id(answered.organization_id, answered.public_id)
        orm = CheckoutSession.objects.select_related("event").get(pk=answered.pk)
    for locked in (by_id, by_public_id):
        for field in CheckoutSession._meta.concrete_fields:
            assert getattr(locked, field.attname) == getattr(orm, field.attname), field.name
        assert locked.event.__dict__.keys() >= {"name", "public_id", "payment_providers"}
        assert (locked.event.name, locked.event.payment_providers) == (orm.event.name, orm.event.payment_providers)
        assert session_as_api(locked) == session_as_api(orm)


@pytest.mark.postgres  # elsewhere the ORM's read locks, and the rows are read after it
def test_provider_news_reads_the_rows_and_endpoints_with_the_lock(answered, organization):
    WebhookEndpoint.objects.create(organization=organization, url="https://example.com/a", enabled_events=["*"])
    WebhookEndpoint.objects.create(organization=organization, url="https://example.com/off", enabled=False)
    with transaction.atomic():
        locked = state.lock_by_public_id(answered.organization_id, answered.public_id)
        cache = locked._prefetched_objects_cache
        assert [i.quantity for i in cache["line_items"]] == [2]
        assert {a.question.text: a.value for a in cache["answers"]} == {"Company": "Acme", "T-shirt size": "M"}
        assert [e.url for e in locked._endpoints_read] == ["https://example.com/a"]
        assert locked._endpoints_read[0].wants("checkout.session.paid")


@pytest.mark.postgres
def test_rows_changed_while_waiting_for_the_lock_are_read_again(answered):
    """Another transaction holds the session (saving new answers) when provider news
    arrives: the news waits for the lock, and must announce the answers as saved, not as
    they were when its statement began."""
    other, watcher = _connect(autocommit=False), _connect(autocommit=True)
    try:
        other.execute("SELECT id FROM checkout_checkoutsession WHERE id = %s FOR UPDATE", [answered.pk])
        other.execute("UPDATE checkout_answer SET value = 'Changed Inc' WHERE session_id = %s AND value = 'Acme'",
                      [answered.pk])
        other.execute("UPDATE checkout_checkoutsession SET details_version = details_version + 1 WHERE id = %s",
                      [answered.pk])
        seen = {}

        def provider_news():
            try:
                with transaction.atomic():
                    locked = state.lock_by_public_id(answered.organization_id, answered.public_id)
                    seen["answers"] = session_as_api(locked)["answers"]
            finally:
                connection.close()

        waiting = threading.Thread(target=provider_news)
        waiting.start()
        deadline = time.monotonic() + 10
        while not _someone_waits_for_a_lock(watcher) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _someone_waits_for_a_lock(watcher), "the news never waited for the row lock"
        other.commit()
        waiting.join(10)
        assert seen["answers"] == {"Company": "Changed Inc", "T-shirt size": "M"}
    finally:
        other.close()  # rolls back whatever it still holds, so a failure cannot hang the teardown
        watcher.close()


def _connect(*, autocommit: bool) -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"],
                           password=db["PASSWORD"] or None, autocommit=autocommit)


def _someone_waits_for_a_lock(watcher: psycopg.Connection) -> bool:
    """A backend of this database waits for a lock (read outside any transaction: within one,
    PostgreSQL would show the same snapshot of its activity every time)."""
    row = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND wait_event_type = 'Lock'").fetchone()
    return row[0] > 0
