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

# path -> (ceiling, count before the webhook path was first made lean). The same on every
# database: there is one code path.
CEILINGS = {
    # the duplicate check and its record in one statement: an UPDATE of the first copy's row
    # through the unique dedupe_key index, counting it (2 before issue 26: a SELECT, then an
    # INSERT of a row per duplicate)
    "duplicate": (1, 4),
    # duplicate check; BEGIN; the payment found with its session, the session locked (with
    # its event's gate and organization), in one read; the payment updated; line items and
    # answers; tickets issued; one save of the session, transitions, events, endpoints (and
    # deliveries) in bulk; the first copy's row inserted with its outcome (the transaction's
    # last statement: a racing copy fails the unique key and rolls back whole); COMMIT.
    # 20 → 15 (issue 26): tickets announced from bulk_create, not read back; no savepoint
    # (2); the session found under its lock, not found then locked; the named-or-newest
    # payment in one read.
    # 15 → 13 (issue 26): the payment read in the lock's statement; the inbound row written
    # once, with its outcome, instead of inserted then updated. (Issue 26 asked for 12: see
    # docs/architecture.md, "What the hot paths cost", for why each of the 13 stays.)
    "unique, completes the session": (13, 43),
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
    assert len(unique) <= CEILINGS["unique, completes the session"][0], "\n".join(unique)
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.tickets.count() == 2
    assert list(OutboxEvent.objects.filter(session=session).order_by("id").values_list("type", flat=True))[-2:] == [
        "checkout.session.paid", "checkout.session.completed"]

    outcome, duplicate = _post(client, stripe_org, completed)
    assert outcome == "duplicate"
    assert len(duplicate) <= CEILINGS["duplicate"][0], "\n".join(duplicate)
    assert "UPDATE" in duplicate[0] and "dedupe_key" in duplicate[0]
    row = InboundWebhook.objects.get(event_id=completed["id"])
    assert (row.outcome, row.duplicates) == ("processed", 1) and row.last_duplicate_at is not None
