"""The checkout state machine: one table, one ``apply``.

Nothing else assigns ``CheckoutSession.status``. ``apply`` reads the session under its
row lock (or takes one its caller read with ``lock()`` in the same transaction), checks
the table, records a ``Transition`` and writes the outbound event to the outbox — all in
the caller's transaction, so either everything happens or nothing does. ``apply_steps``
does the same for a chain (``pay`` then ``complete``) with one write of each kind.

Provider news may arrive in any order. The table therefore lets provider triggers move a
session forward from every state that is not final, and never backwards: ``processing``
after ``paid`` has no row here, so it raises ``InvalidTransition``, which the webhook
handler records and ignores.
"""

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ievents import writes
from ievents.models import Event

from .models import CheckoutSession, Source, Status, Transition
from .representation import (
    STATUSES_WITH_TICKETS,
    keep_as_prefetched,
    keep_listed_rows,
    listed_rows_of,
    load_listed_rows,
    session_as_api,
)

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

# The outbound event each transition announces (CONTRACT.md, "Outbound events").
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


def lock(sessions: QuerySet | int) -> CheckoutSession | None:
    """The first session of ``sessions`` (a queryset, or a primary key), read under its row lock.

    Only the session's row is locked (``of``); its event, which every announcement shows,
    comes along in the same statement. Must be called inside the caller's
    ``transaction.atomic()``: the instance returned may then be handed to ``apply`` and
    ``apply_steps``, which change it without reading it again. Returns None if none matches.
    """
    _require_transaction()
    if not isinstance(sessions, QuerySet):
        if connection.vendor == "postgresql":
            return _as_locked(_locked_row("s.id = %s", [sessions]))
        sessions = CheckoutSession.objects.filter(pk=sessions)
    return _as_locked(sessions.select_for_update(of=("self",)).select_related("event").first())


def lock_by_public_id(organization_id: int, public_id: str) -> CheckoutSession | None:
    """``lock()`` for the session ``public_id`` of that organization (a provider's news)."""
    if connection.vendor != "postgresql":
        return lock(CheckoutSession.objects.filter(organization_id=organization_id, public_id=public_id))
    _require_transaction()
    # Provider news usually moves the session on and announces it: the rows the
    # announcement lists come with the lock.
    return _as_locked(_locked_row("s.organization_id = %s AND s.public_id = %s", [organization_id, public_id],
                                  with_rows=True))


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("state.lock() outside a transaction locks nothing")


def _as_locked(session: CheckoutSession | None) -> CheckoutSession | None:
    if session is not None:
        session._locked_in_transaction = True
        # The lock ends with the transaction, and so does what the instance may be used for.
        transaction.on_commit(lambda: session.__dict__.pop("_locked_in_transaction", None))
        if session.status not in STATUSES_WITH_TICKETS:
            # Tickets are issued only by ``complete``, under this lock: a session not yet paid
            # has none, and the announcements need not ask (``tickets_issued`` adds them).
            keep_as_prefetched(session, "tickets", [])
    return session


# The locking read written out for PostgreSQL: the session's row locked, its event read with
# it. The ORM's ``select_for_update().select_related().first()`` cost more to compile than
# to run; this is the same statement (without its needless ``ORDER BY … LIMIT 1`` on a
# unique key), built once from the models.
#
# ``with_rows`` adds, in the same round trip, what ``_load_announced_rows`` would read next:
# the line items, answers and endpoints (as one JSON array), and whether they are as fresh
# as a read after the lock. They are read on the statement's snapshot, taken before the row
# lock was granted; when another transaction changed the session in between (it held the
# lock, say), PostgreSQL returns the session's newest version but the rows as they were.
# Whoever changes a session's answers updates its row too (``save_attendee_details``), so
# the row's version (``xmin``) as locked differing from the one the snapshot sees tells
# exactly that case, and the rows are then read again after the lock, as before.
_ROWS_WITH_THE_LOCK = (
    ", s.xmin = (SELECT xmin FROM checkout_checkoutsession WHERE id = s.id)"
    ", (SELECT json_agg(json_build_array(kind, id, related_id, quantity, unit_price, public_id, text, value)"
    " ORDER BY kind, id) FROM ({rows}) AS r(kind, id, related_id, quantity, unit_price, public_id, text, value))"
)


@functools.cache
def _lock_statement(with_rows: bool) -> str:
    from webhooks.outbox import ENDPOINT_ROWS_OF

    qn = connection.ops.quote_name
    session_fields, event_fields = CheckoutSession._meta.concrete_fields, Event._meta.concrete_fields
    columns = [f"s.{qn(f.column)}" for f in session_fields] + [f"e.{qn(f.column)}" for f in event_fields]
    rows = f"{listed_rows_of('s.id')} UNION ALL {ENDPOINT_ROWS_OF.format(organization='s.organization_id')}"
    extra = _ROWS_WITH_THE_LOCK.format(rows=rows) if with_rows else ""
    sql = (f"SELECT {', '.join(columns)}{extra} FROM {qn(CheckoutSession._meta.db_table)} s"  # noqa: S608 -- model names
           f" JOIN {qn(Event._meta.db_table)} e ON e.id = s.event_id WHERE {{where}} FOR UPDATE OF s")
    return sql


def _locked_row(where: str, params: list, *, with_rows: bool = False) -> CheckoutSession | None:
    with connection.cursor() as cursor:
        cursor.execute(_lock_statement(with_rows).format(where=where), params)
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(CheckoutSession._meta.concrete_fields)
    session = _from_row(CheckoutSession, row[:split])
    session.event = _from_row(Event, row[split:split + len(Event._meta.concrete_fields)])
    if with_rows:
        fresh, listed = row[-2], row[-1]
        if fresh:
            from webhooks.outbox import keep_endpoints

            listed = json.loads(listed) if isinstance(listed, str) else listed
            keep_endpoints(session, keep_listed_rows(session, [tuple(r) for r in listed or []]))
    return session


def _from_row(model, values) -> object:
    """An instance as the ORM makes it from its concrete fields' columns, in order, their
    converters applied (JSON fields are read as text and parsed here, as the ORM does)."""
    values = list(values)
    for i, converters, col in _converters(model):
        for converter in converters:
            values[i] = converter(values[i], col, connection)
    return model.from_db(connection.alias, [f.attname for f in model._meta.concrete_fields], values)


@functools.cache
def _converters(model) -> list[tuple]:
    """(position, converters, column) of the model's concrete fields that have converters."""
    return [(i, f.get_db_converters(connection), f.get_col(model._meta.db_table))
            for i, f in enumerate(model._meta.concrete_fields) if f.get_db_converters(connection)]


def is_locked(session: CheckoutSession) -> bool:
    """True for a session read with ``lock()`` in the transaction still open."""
    return getattr(session, "_locked_in_transaction", False) and transaction.get_connection().in_atomic_block


def _load_announced_rows(session: CheckoutSession) -> None:
    """The line items and answers every announcement lists (``complete`` issues tickets from
    the same line items), read once per locked session, only when something is announced;
    and the organization's endpoints, which the announcements are delivered to."""
    cache = getattr(session, "_prefetched_objects_cache", {})
    if "line_items" not in cache or "answers" not in cache:
        from webhooks.outbox import ENDPOINT_ROWS_SELECT, keep_endpoints

        # With the endpoints the announcements go to, in the same statement.
        keep_endpoints(session, load_listed_rows(session, (ENDPOINT_ROWS_SELECT, [session.organization_id])))


def tickets_issued(session: CheckoutSession, tickets: list) -> None:
    """Remember tickets just inserted for a locked session, so announcements list them unread."""
    keep_as_prefetched(session, "tickets", [*session.tickets.all(), *tickets])


def apply(session: int | CheckoutSession, trigger: str, source: str, detail: str = "", *,
          effects: Callable[[CheckoutSession], Iterable[str] | None] | None = None) -> Applied:
    """Apply ``trigger`` to the session under its row lock and announce it.

    ``session`` is a primary key (the row is locked and read here) or a session the caller
    locked with ``lock()`` in its current transaction (used as it is). Must run inside the
    caller's ``transaction.atomic()`` when the caller has more to do in the same unit
    (releasing holds, issuing tickets); it opens one of its own otherwise.
    """
    return apply_steps(session, source, [Step(trigger, detail, effects)])[-1]


def apply_steps(session: int | CheckoutSession, source: str, steps: list[Step]) -> list[Applied]:
    """Apply several triggers one after the other (``pay`` then ``complete``) under one lock.

    Every step is checked against the table before anything is written, so an invalid one
    changes nothing. Each still records its own transition and announces its own event, in
    order, each showing the state its step brought; the writes are batched: one ``UPDATE``
    of the session, one insert of the transitions, one of the events.
    """
    if source not in Source.values:
        raise ValueError(f"unknown source {source!r}")
    if isinstance(session, CheckoutSession):
        if not is_locked(session):
            raise ValueError("apply() takes a primary key, or a session read with state.lock() in this transaction")
        return _apply_locked(session, source, steps)
    with transaction.atomic():
        locked = lock(session)
        if locked is None:
            raise CheckoutSession.DoesNotExist(f"no checkout session {session!r}")
        return _apply_locked(locked, source, steps)


def _apply_locked(session: CheckoutSession, source: str, steps: list[Step]) -> list[Applied]:
    statuses, status = [], session.status
    for step in steps:  # all checked first: nothing is written for a chain that cannot finish
        statuses.append((status, target(status, step.trigger)))
        status = statuses[-1][1]
    if any(step.trigger in EVENT_FOR_TRIGGER for step in steps):
        _load_announced_rows(session)
    fields = {"status", "version", "updated_at"}
    transitions, announcements, shown = [], [], None
    # One write of the session, its transitions, the tickets an effect issues and the
    # events with their deliveries: one statement on PostgreSQL (ievents.writes), joined
    # by what the caller gathers around this (a webhook's own row and payment).
    with writes.gathering() as batch:
        for step, (from_status, to_status) in zip(steps, statuses, strict=True):
            session.status = to_status
            session.version += 1
            if to_status == S.COMPLETED:
                session.completed_at = timezone.now()
                fields.add("completed_at")
            transitions.append(Transition(session=session, from_status=from_status, to_status=to_status,
                                          trigger=step.trigger, source=source, detail=step.detail[:500]))
            if step.effects is not None:
                fields.update(step.effects(session) or ())
            event_type = EVENT_FOR_TRIGGER.get(step.trigger)
            if event_type:
                # The rows it lists are the same at every step (under this lock): built once.
                shown = session_as_api(session, rows_from=shown)
                announcements.append((event_type, shown))
        batch.update(session, fields)
        batch.insert(transitions)
        if announcements:
            from webhooks.outbox import record_events

            record_events(session, announcements)
    return [Applied(session=session, transition=row) for row in transitions]
