"""SQL statements per verified provider webhook: a ceiling that only goes down.

Speed is measured in ``bench/bench_inbound_webhooks.py``; the statements a webhook runs are
deterministic, so they can be asserted. Counted with Django's test client, transaction
control (BEGIN, COMMIT, savepoints) included, with the organization's route already kept
by this process (every delivery after the first few seconds' one).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkout.models import Status
from webhooks.models import InboundWebhook, OutboxEvent

from ..payments.helpers import STRIPE_SECRET, checkout_object, configure, pending_session, post_stripe, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)  # BEGIN and COMMIT as in production

# path -> (ceiling now, count before the optimisation)
CEILINGS = {
    # the duplicate recorded by the statement that finds the first copy
    "duplicate": (1, 4),
    # duplicate check; BEGIN; insert the first copy; lock and read the session with its
    # event, line items, answers and the organization's endpoints; one statement writing
    # the payment, tickets, session, both transitions, both outbox events and the
    # delivery's outcome (ievents.writes); COMMIT. Elsewhere (SQLite) the rows are read
    # after the lock and each write is its own statement.
    "unique, completes the session": (6, 43),
}


def _post(client, org, event):
    with CaptureQueriesContext(connection) as queries:
        response = post_stripe(client, org.public_id, event)
    assert response.status_code == 200
    return response.json()["outcome"], [q["sql"] for q in queries.captured_queries]


@pytest.fixture
def stripe_org(organization):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    return organization


def test_statements_of_a_unique_completing_event_and_its_duplicate(client, stripe_org, event):
    warm, _ = pending_session(event, provider="stripe")
    _post(client, stripe_org, stripe_event("checkout.session.completed", checkout_object(warm)))  # keeps the route
    session, _ = pending_session(event, provider="stripe")
    completed = stripe_event("checkout.session.completed", checkout_object(session))

    outcome, unique = _post(client, stripe_org, completed)
    assert outcome == "processed"
    on_postgres = connection.vendor == "postgresql"
    extra = 0 if on_postgres else 6  # the rows' read, and the writes one by one
    assert len(unique) <= CEILINGS["unique, completes the session"][0] + extra, "\n".join(unique)
    assert not any(sql.startswith("SAVEPOINT") for sql in unique)
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.tickets.count() == 2
    assert list(OutboxEvent.objects.filter(session=session).order_by("id").values_list("type", flat=True))[-2:] == [
        "checkout.session.paid", "checkout.session.completed"]

    outcome, duplicate = _post(client, stripe_org, completed)
    assert outcome == "duplicate"
    assert len(duplicate) <= CEILINGS["duplicate"][0], "\n".join(duplicate)
    assert InboundWebhook.objects.filter(event_id=completed["id"]).values_list("outcome", flat=True).count() == 2
