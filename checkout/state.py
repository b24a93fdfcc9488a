"""The checkout state machine: one table, one ``apply``.

Nothing else assigns ``CheckoutSession.status``. ``apply`` reads the session under its
row lock (or takes one its caller read with ``lock()`` in the same transaction), checks
the table, records a ``Transition`` and writes the outbound event to the outbox — all in
the caller's transaction, so either everything happens or nothing does. ``apply_steps``
does the same for a chain (``pay`` then ``complete``) under one lock.

Provider news may arrive in any order. The table therefore lets provider triggers move a
session forward from every state that is not final, and never backwards: ``processing``
after ``paid`` has no row here, so it raises ``InvalidTransition``, which the webhook
handler records and ignores.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from webhooks.outbox import record_events  # the one import against the layers (docs/architecture.md)

from .models import CheckoutSession, Source, Status, Transition
from .representation import session_as_api, with_listed_rows

S = Status


class InvalidTransition(Exception):
    """The trigger is not allowed from the session's current state."""

    def __init__(self, status: str, trigger: str):
        super().__init__(f"cannot {trigger!r} a session that is {status!r}")
        self.status = status
        self.trigger = trigger


# States a session can still move on from on its own; provider news may also move an
# expired or canceled session to ``paid`` (a Multibanco reference paid the next day).
LIVE = {S.OPEN, S.PAYMENT_PENDING, S.PROCESSING, S.AUTHORIZED, S.REJECTED}
FINAL = {S.COMPLETED, S.REFUNDED, S.EXPIRED, S.CANCELED}

# (from_state, trigger) -> to_state
TRANSITIONS: dict[tuple[str, str], str] = {}


def _allow(trigger: str, sources: set[str], to_state: str) -> None:
    for from_state in sources:
        TRANSITIONS[(from_state, trigger)] = to_state


_allow("start_payment", {S.OPEN, S.REJECTED, S.UNPAID}, S.PAYMENT_PENDING)
_allow("processing", {S.OPEN, S.PAYMENT_PENDING}, S.PROCESSING)
_allow("authorize", {S.OPEN, S.PAYMENT_PENDING, S.PROCESSING, S.REJECTED}, S.AUTHORIZED)
_allow("reject", {S.OPEN, S.PAYMENT_PENDING, S.PROCESSING}, S.REJECTED)
_allow(
    "pay",
    {S.OPEN, S.PAYMENT_PENDING, S.PROCESSING, S.AUTHORIZED, S.REJECTED, S.UNPAID, S.EXPIRED, S.CANCELED},
    S.PAID,
)
_allow("fail_capture", {S.AUTHORIZED, S.PROCESSING, S.PAYMENT_PENDING}, S.UNPAID)
_allow("complete", {S.PAID}, S.COMPLETED)
_allow("expire", {S.OPEN, S.PAYMENT_PENDING, S.REJECTED, S.UNPAID}, S.EXPIRED)
_allow("cancel", {S.OPEN, S.PAYMENT_PENDING, S.REJECTED, S.UNPAID, S.AUTHORIZED}, S.CANCELED)
_allow("refund", {S.PAID, S.COMPLETED, S.PARTIALLY_REFUNDED}, S.REFUNDED)
_allow("partial_refund", {S.PAID, S.COMPLETED, S.PARTIALLY_REFUNDED}, S.PARTIALLY_REFUNDED)

# A gate denial changes nothing but is history and news: it records a transition to the
# same state and sends ``checkout.session.gate_denied``.
for _state in (S.OPEN, S.REJECTED, S.UNPAID):
    TRANSITIONS[(_state, "gate_deny")] = _state

TRIGGERS = sorted({trigger for _, trigger in TRANSITIONS})

# The outbound event each transition announces (docs/api.md, "Outbound events").
EVENT_FOR_TRIGGER = {
    "gate_deny": "checkout.session.gate_denied",
    "authorize": "checkout.session.authorized",
    "reject": "checkout.session.rejected",
    "pay": "checkout.session.paid",
    "fail_capture": "checkout.session.unpaid",
    "complete": "checkout.session.completed",
    "expire": "checkout.session.expired",
    "cancel": "checkout.session.canceled",
    "refund": "checkout.session.refunded",
    "partial_refund": "checkout.session.refunded",
}


@dataclass(frozen=True)
class Applied:
    session: CheckoutSession
    transition: Transition


@dataclass(frozen=True)
class Step:
    """One trigger of a chain applied under one lock (``apply_steps``).

    ``effects(session)`` runs under the lock after the change and before the announcement,
    so the event shows what the new state brought (``completed`` carries its tickets). It may
    set fields of the session and return their names: they are saved with the transition.
    """

    trigger: str
    detail: str = ""
    effects: Callable[[CheckoutSession], Iterable[str] | None] | None = None


def target(status: str, trigger: str) -> str:
    """The state ``trigger`` leads to from ``status``, or raise ``InvalidTransition``."""
    try:
        return TRANSITIONS[(status, trigger)]
    except KeyError:
        raise InvalidTransition(status, trigger) from None


def can_apply(status: str, trigger: str) -> bool:
    return (status, trigger) in TRANSITIONS


def lock(session: int | CheckoutSession) -> CheckoutSession | None:
    """The session, read under its row lock, with its event and organization; None if there
    is none. Must run inside the caller's ``transaction.atomic()``, which the lock lasts for:
    the instance may then be handed to ``apply`` and ``apply_steps``.

    Only the session's row is locked (``of``): locking the event too would make every
    checkout of the event wait for this one. Given a session its caller read (a page's,
    with its event, the event's gate and the organization), only the session's own row is
    read again: the event, gate and organization are the caller's, read moments before.
    They are not locked either way, so reading them under the lock would be no surer, and
    it would double the columns the statement builds and loads (issue 26).
    """
    if transaction.get_autocommit():
        raise transaction.TransactionManagementError("state.lock() outside a transaction locks nothing")
    # get(), not first(): a primary key names one row, and first()'s ORDER BY costs a third
    # more to build than the query itself (bench/profile_purchase.py).
    try:
        if isinstance(session, CheckoutSession):
            locked = CheckoutSession.objects.select_for_update().get(pk=session.pk)
            locked.event, locked.organization = session.event, session.organization
            return locked
        # The event's gate comes along: whether a gate is on decides what a payment may complete.
        return (CheckoutSession.objects.select_for_update(of=("self",)).select_related("event__gate", "organization")
                .get(pk=session))
    except CheckoutSession.DoesNotExist:
        return None


def apply(session: int | CheckoutSession, trigger: str, source: str, detail: str = "", *,
          effects: Callable[[CheckoutSession], Iterable[str] | None] | None = None) -> Applied:
    """Apply ``trigger`` to the session under its row lock and announce it.

    ``session`` is a primary key (the row is locked and read here) or a session the caller
    read with ``lock()`` in its current transaction (used as it is). Runs inside the
    caller's transaction when there is one, so what the caller does around it (releasing
    holds, issuing tickets) commits or rolls back with the transition.
    """
    return apply_steps(session, source, [Step(trigger, detail, effects)])[-1]


def apply_steps(session: int | CheckoutSession, source: str, steps: list[Step]) -> list[Applied]:
    """Apply several triggers one after the other (``pay`` then ``complete``) under one lock.

    Every step is checked against the table before anything is written, so a chain that
    cannot finish changes nothing. Each step records its own transition and announces its
    own event, in order, each showing the state its step brought.
    """
    if source not in Source.values:
        raise ValueError(f"unknown source {source!r}")
    if isinstance(session, CheckoutSession):
        if transaction.get_autocommit():
            raise ValueError("apply() takes a primary key, or a session read with state.lock() in this transaction")
        return _apply_locked(session, source, steps)
    with transaction.atomic():
        locked = lock(session)
        if locked is None:
            raise CheckoutSession.DoesNotExist(f"no checkout session {session!r}")
        return _apply_locked(locked, source, steps)


def _apply_locked(session: CheckoutSession, source: str, steps: list[Step]) -> list[Applied]:
    statuses, status = [], session.status
    for step in steps:
        statuses.append((status, target(status, step.trigger)))
        status = statuses[-1][1]
    with_listed_rows(session)  # every announcement lists them; complete issues tickets from them
    fields = {"status", "version", "updated_at"}
    transitions, announcements = [], []
    for step, (from_status, to_status) in zip(steps, statuses, strict=True):
        session.status = to_status
        session.version += 1
        if to_status == S.COMPLETED:
            session.completed_at = timezone.now()
            fields.add("completed_at")
        if step.effects is not None:
            fields.update(step.effects(session) or ())
        transitions.append(Transition(session=session, from_status=from_status, to_status=to_status,
                                      trigger=step.trigger, source=source, detail=step.detail[:500]))
        event_type = EVENT_FOR_TRIGGER.get(step.trigger)
        if event_type:
            announcements.append((event_type, session_as_api(session)))  # as this step left it
    session.save(update_fields=sorted(fields))
    Transition.objects.bulk_create(transitions)
    if announcements:
        record_events(session, announcements)
    return [Applied(session=session, transition=transition) for transition in transitions]
