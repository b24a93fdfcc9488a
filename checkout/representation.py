"""A checkout session as the API shows it, and as every outbound event carries it."""

from django.conf import settings
from django.db import connection
from django.urls import reverse

from ievents.models import Question, TicketType

from .models import Answer, LineItem, Status

# Tickets are issued only when a paid session completes (``services.complete``, PAID →
# COMPLETED), and a completed session can only be refunded after that. A session in any
# other status has none, so its representation (the gate's payload, say) skips the read.
STATUSES_WITH_TICKETS = {Status.PAID, Status.COMPLETED, Status.PARTIALLY_REFUNDED, Status.REFUNDED}


def hosted_url(session) -> str:
    return settings.PUBLIC_BASE_URL + reverse("checkout:session", args=[session.public_id])


def _rows(session, relation: str, *select_related: str):
    """The session's ``relation`` as prefetched with it (``prefetch_related``), else read now
    with ``select_related``.

    Whoever loaded the session with its rows (the state machine, an API list) saves the
    statements, and the building of a query it would not run; everyone else gets them
    fresh, as before.
    """
    cached = getattr(session, "_prefetched_objects_cache", {}).get(relation)
    if cached is not None:
        return cached
    rows = getattr(session, relation).all()
    return rows.select_related(*select_related) if select_related else rows


def keep_as_prefetched(session, relation: str, rows: list) -> None:
    """Make ``session.<relation>.all()`` return ``rows`` without a query, as a prefetch does."""
    cache = session.__dict__.setdefault("_prefetched_objects_cache", {})
    cache.pop(relation, None)
    queryset = getattr(session, relation).all()
    queryset._result_cache, queryset._prefetch_done = list(rows), True  # what prefetch_related_objects does
    cache[relation] = queryset


# The session's line items with their ticket types' id and name, and its answers with their
# questions' text: what the representation lists of them, in one round trip. Parameters: the
# session's id, twice. The gate adds a row of its own to this read (webhooks.gate).
_LINE_ITEMS_OF = (
    "SELECT 0, li.id, li.ticket_type_id, li.quantity, li.unit_price, tt.public_id, tt.name, NULL"
    " FROM checkout_lineitem li JOIN ievents_tickettype tt ON tt.id = li.ticket_type_id WHERE li.session_id = {session}"
)
_ANSWERS_OF = (
    "SELECT 1, a.id, a.question_id, NULL, NULL, NULL, q.text, a.value"
    " FROM checkout_answer a JOIN ievents_question q ON q.id = a.question_id WHERE a.session_id = {session}"
)
LINE_ITEM_ROWS_SELECT = _LINE_ITEMS_OF.format(session="%s")
LISTED_ROWS_SELECT = " UNION ALL ".join((LINE_ITEM_ROWS_SELECT, _ANSWERS_OF.format(session="%s")))


def listed_rows_of(session_column: str) -> str:
    """``LISTED_ROWS_SELECT`` for the session a column of an enclosing query names (the
    state machine's locking read), without parameters."""
    return " UNION ALL ".join((_LINE_ITEMS_OF.format(session=session_column),
                               _ANSWERS_OF.format(session=session_column)))


def load_listed_rows(session, read_also: tuple[str, list] | None = None) -> list[tuple]:
    """Read the session's line items and answers in one statement and keep them as if
    prefetched with it (``session_as_api`` lists them; ``complete`` issues tickets from the
    line items). Written out: the ORM's two prefetches cost several times more, mostly
    compiling SQL. ``read_also``: (SQL, parameters) of more rows read in the same statement
    (see ``keep_listed_rows``), which are returned."""
    return read_listed_rows(session, LISTED_ROWS_SELECT, [session.pk, session.pk], read_also)


def read_listed_rows(session, sql: str, params: list, read_also: tuple[str, list] | None = None) -> list[tuple]:
    """Run ``sql`` (rows in ``LISTED_ROWS_SELECT``'s columns), with ``read_also``'s rows
    added to it, and keep its line items and answers with ``session``; return the others."""
    if read_also:
        sql, params = f"{sql} UNION ALL {read_also[0]}", [*params, *read_also[1]]
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ORDER BY 1, 2", params)
        return keep_listed_rows(session, cursor.fetchall())


def keep_listed_rows(session, rows) -> list[tuple]:
    """Keep the line items (kind 0) and answers (kind 1) of ``LISTED_ROWS_SELECT``'s rows as
    if prefetched with ``session``; return the rows of any other kind, for the caller that
    added them. Instances come from ``Model.from_db`` with the columns read; any other field
    is deferred (loaded on access), never a wrong default."""
    db = connection.alias
    items, answers, others = [], [], []
    for row in rows:
        kind, pk, related_id, quantity, unit_price, public_id, text, value = row
        if kind == 0:
            item = LineItem.from_db(db, ["id", "session_id", "ticket_type_id", "quantity", "unit_price"],
                                    [pk, session.pk, related_id, quantity, unit_price])
            item.ticket_type = TicketType.from_db(db, ["id", "public_id", "name"], [related_id, public_id, text])
            items.append(item)
        elif kind == 1:
            answer = Answer.from_db(db, ["id", "session_id", "question_id", "value"], [pk, session.pk, related_id, value])
            answer.question = Question.from_db(db, ["id", "text"], [related_id, text])
            answers.append(answer)
        else:
            others.append(row)
    keep_as_prefetched(session, "line_items", items)
    keep_as_prefetched(session, "answers", answers)
    return others


def session_as_api(session, *, rows_from: dict | None = None) -> dict:
    """``rows_from``: this session's representation a moment ago, under the same lock (the
    state machine announcing ``paid`` then ``completed``): its line items, answers and URL
    are reused, as they cannot have changed; everything else is read from ``session`` again."""
    if rows_from is not None:
        return _as_api(session, rows_from["line_items"], rows_from["answers"], rows_from["url"])
    line_items = [
        {
            "ticket_type": item.ticket_type.public_id,
            "name": item.ticket_type.name,
            "quantity": item.quantity,
            "unit_price": item.unit_price,
            "amount": item.amount,
        }
        for item in _rows(session, "line_items", "ticket_type")
    ]
    answers = {a.question.text: a.value for a in _rows(session, "answers", "question")}
    return _as_api(session, line_items, answers)


def _as_api(session, line_items: list, answers: dict, url: str | None = None) -> dict:
    return {
        "id": session.public_id,
        "object": "checkout.session",
        "status": session.status,
        "version": session.version,
        "url": url or hosted_url(session),
        "event": session.event.public_id,
        "customer": {"name": session.customer_name, "email": session.customer_email},
        "answers": answers,
        "line_items": line_items,
        "amount_total": session.amount_total,
        "amount_paid": session.amount_paid,
        "amount_refunded": session.amount_refunded,
        "currency": session.currency,
        "payment_provider": session.provider or None,
        "expires_at": session.expires_at.isoformat(),
        "created": session.created_at.isoformat(),
        "completed_at": session.completed_at.isoformat() if session.completed_at else None,
        "success_url": session.success_url or None,
        "cancel_url": session.cancel_url or None,
        "webhook_url": session.webhook_url or None,
        "metadata": session.metadata,
        "tickets": [t.code for t in _rows(session, "tickets")]
        if session.status in STATUSES_WITH_TICKETS else [],
        "needs_attention": session.needs_attention or None,
    }
