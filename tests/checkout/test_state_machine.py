"""The transition table, checked for every pair of state and trigger."""

import itertools

import pytest

from checkout import state
from checkout.models import CheckoutSession, Source, Status, Transition
from webhooks.models import OutboxEvent

pytestmark = pytest.mark.django_db

# What the design allows, written out independently of the table so a slip in either shows.
EXPECTED = {
    "start_payment": ({"open", "rejected", "unpaid"}, "payment_pending"),
    "gate_deny": ({"open", "rejected", "unpaid"}, None),  # None: stays where it is
    "processing": ({"open", "payment_pending"}, "processing"),
    "authorize": ({"open", "payment_pending", "processing", "rejected"}, "authorized"),
    "reject": ({"open", "payment_pending", "processing"}, "rejected"),
    "pay": ({"open", "payment_pending", "processing", "authorized", "rejected", "unpaid", "expired", "canceled"}, "paid"),
    "fail_capture": ({"authorized", "processing", "payment_pending"}, "unpaid"),
    "complete": ({"paid"}, "completed"),
    "expire": ({"open", "payment_pending", "rejected", "unpaid"}, "expired"),
    "cancel": ({"open", "payment_pending", "rejected", "unpaid", "authorized"}, "canceled"),
    "refund": ({"paid", "completed", "partially_refunded"}, "refunded"),
    "partial_refund": ({"paid", "completed", "partially_refunded"}, "partially_refunded"),
}

PAIRS = list(itertools.product(Status.values, sorted(EXPECTED)))


def test_the_table_knows_exactly_the_expected_triggers():
    assert set(state.TRIGGERS) == set(EXPECTED)


def _session_in(open_session, status):
    # Tests may place a session in any state directly; production code never does.
    CheckoutSession.objects.filter(pk=open_session.pk).update(status=status)
    return CheckoutSession.objects.get(pk=open_session.pk)


@pytest.mark.parametrize(("status", "trigger"), PAIRS, ids=[f"{s}-{t}" for s, t in PAIRS])
def test_every_state_and_trigger(open_session, status, trigger):
    session = _session_in(open_session, status)
    allowed_from, to_state = EXPECTED[trigger]
    events_before = OutboxEvent.objects.count()
    version_before = session.version
    if status in allowed_from:
        applied = state.apply(session.pk, trigger, Source.ADMIN, detail="test")
        session.refresh_from_db()
        assert session.status == (to_state or status)
        assert session.version == version_before + 1
        row = applied.transition
        assert (row.from_status, row.to_status, row.trigger, row.source) == (status, session.status, trigger, "admin")
        expected_event = state.EVENT_FOR_TRIGGER.get(trigger)
        assert OutboxEvent.objects.count() == events_before + (1 if expected_event else 0)
        if expected_event:
            event = OutboxEvent.objects.order_by("-id").first()
            assert event.type == expected_event
            assert event.payload["data"]["object"]["status"] == session.status
            assert event.payload["data"]["object"]["version"] == session.version
    else:
        with pytest.raises(state.InvalidTransition):
            state.apply(session.pk, trigger, Source.ADMIN)
        session.refresh_from_db()
        assert session.status == status and session.version == version_before
        assert OutboxEvent.objects.count() == events_before
        assert not Transition.objects.filter(session=session, trigger=trigger).exists()


@pytest.mark.parametrize("late", ["processing", "authorize", "reject", "start_payment"])
def test_provider_news_never_moves_a_paid_session_backwards(open_session, late):
    session = _session_in(open_session, Status.PAID)
    with pytest.raises(state.InvalidTransition):
        state.apply(session.pk, late, Source.PROVIDER_WEBHOOK)
    session.refresh_from_db()
    assert session.status == Status.PAID


def test_every_outbound_event_type_is_one_of_the_contract(open_session):
    contract = {f"checkout.session.{name}" for name in
                ("created", "authorized", "rejected", "paid", "unpaid", "completed", "expired", "canceled",
                 "refunded", "gate_denied")}
    assert set(state.EVENT_FOR_TRIGGER.values()) <= contract


def test_an_unknown_source_is_refused_and_changes_nothing(open_session):
    with pytest.raises(ValueError):
        state.apply(open_session.pk, "expire", "somebody")
    open_session.refresh_from_db()
    assert open_session.status == Status.OPEN


def test_a_failed_side_effect_rolls_the_transition_back(open_session):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        state.apply(open_session.pk, "expire", Source.TIMER)
        raise RuntimeError("boom")
    open_session.refresh_from_db()
    assert open_session.status == Status.OPEN
    assert not OutboxEvent.objects.filter(type="checkout.session.expired").exists()
