"""The checkout state machine: one table, one ``apply``.

Nothing else assigns ``CheckoutSession.status``. ``apply`` re-reads the session under a
row lock, checks the table, records a ``Transition`` and writes the outbound event to the
outbox — all in the caller's transaction, so either everything happens or nothing does.

Provider news may arrive in any order. The table therefore lets provider triggers move a
session forward from every state that is not final, and never backwards: ``processing``
after ``paid`` has no row here, so it raises ``InvalidTransition``, which the webhook
handler records and ignores.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from .models import Answer, CheckoutSession, LineItem, Source, Status, Transition

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


def target(status: str, trigger: str) -> str:
    """The state ``trigger`` leads to from ``status``, or raise ``InvalidTransition``."""
    try:
        return TRANSITIONS[(status, trigger)]
    except KeyError:
        raise InvalidTransition(status, trigger) from None


def can_apply(status: str, trigger: str) -> bool:
    return (status, trigger) in TRANSITIONS


def apply(session_id: int, trigger: str, source: str, detail: str = "", *,
          effects: Callable[[CheckoutSession], None] | None = None) -> Applied:
    """Apply ``trigger`` to the session under its row lock and announce it.

    Must run inside the caller's ``transaction.atomic()`` when the caller has more to do
    in the same unit (releasing holds, issuing tickets); it opens one of its own otherwise.
    ``effects(session)`` runs under the lock after the change and before the announcement,
    so the event shows what the new state brought (``completed`` carries its tickets).
    """
    if source not in Source.values:
        raise ValueError(f"unknown source {source!r}")
    with transaction.atomic():
        sessions = CheckoutSession.objects.select_for_update(of=("self",))
        event_type = EVENT_FOR_TRIGGER.get(trigger)
        if event_type:
            # The announcement shows the event's id: fetch it in the same statement. Only
            # the session's row is locked ("of"), as before; the event's is merely read.
            # The rows it lists come along too (``complete`` then issues tickets from the
            # same line items); tickets are not prefetched: ``complete`` adds them after.
            sessions = sessions.select_related("event").prefetch_related(
                Prefetch("line_items", queryset=LineItem.objects.select_related("ticket_type")),
                Prefetch("answers", queryset=Answer.objects.select_related("question")),
            )
        session = sessions.get(pk=session_id)
        to_status = target(session.status, trigger)
        from_status = session.status
        session.status = to_status
        session.version += 1
        fields = ["status", "version", "updated_at"]
        if to_status == S.COMPLETED:
            session.completed_at = timezone.now()
            fields.append("completed_at")
        session.save(update_fields=fields)
        row = Transition.objects.create(
            session=session, from_status=from_status, to_status=to_status,
            trigger=trigger, source=source, detail=detail[:500],
        )
        if effects is not None:
            effects(session)
        if event_type:
            from webhooks.outbox import record_event

            record_event(session, event_type)
        return Applied(session=session, transition=row)
