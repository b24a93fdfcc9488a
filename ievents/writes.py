"""Writes gathered under a lock and sent to the database together: on PostgreSQL, as one
statement.

A payment that completes a checkout writes to seven tables: the payment, the session, its
two transitions, two outbox events and their deliveries, the tickets, and the webhook's
own row. Written one ORM call at a time, that was seven round trips and, above all, the
ORM compiling seven statements, the larger part of a verified webhook's CPU
(``bench/bench_inbound_webhooks.py``). ``Writes`` collects them as model instances (and
raw statements) and, at ``flush()``, sends them on PostgreSQL as one statement of
data-modifying CTEs::

    WITH w0 AS (INSERT INTO checkout_ticket (...) VALUES (...), (...) RETURNING id AS pk),
         w1 AS (UPDATE checkout_checkoutsession SET status = ..., ... WHERE id = ... RETURNING id AS pk),
         w2 AS (INSERT INTO webhooks_outboxevent (...) VALUES (...) RETURNING id AS pk),
         w3 AS (INSERT INTO webhooks_delivery (event_id, ...)
                VALUES ((SELECT pk FROM w2 ORDER BY pk LIMIT 1 OFFSET 0), ...) RETURNING id AS pk)
    SELECT 0, pk FROM w0 UNION ALL SELECT 1, pk FROM w1 UNION ALL ... ORDER BY 1, 2

Elsewhere (SQLite, in development) each write is the ORM call it stands for, in order:
``bulk_create``, ``save(update_fields=…)``, ``cursor.execute``.

What ``flush`` relies on, and its callers keep to:

- Nothing gathered is read back before the flush. Code that reads what it may have
  written flushes first (``gathering()`` flushes when its outermost block ends).
- Each row is written once per flush. Updates of one instance are merged (all their
  fields, with the values the instance holds at the flush); a raw statement must not
  touch a row another write of the same flush touches: PostgreSQL runs the CTEs on one
  snapshot, and of two updates of one row only one would count.
- A foreign key to an instance inserted earlier in the same flush is resolved by its
  position in that insert (its id is not known before). Inserted ids are handed out by a
  sequence in the order of the rows, so the n-th smallest id returned is the n-th row's,
  as ``bulk_create`` also assumes. Django's foreign keys on PostgreSQL are deferred: they
  are checked at commit, as before.
- An update that matches no row raises ``DatabaseError``, as ``save(update_fields=…)``
  does.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import DatabaseError, connection
from django.db.models import Model

_gathered: ContextVar[Writes | None] = ContextVar("gathered_writes", default=None)


@dataclass
class _Insert:
    objs: list[Model]


@dataclass
class _Update:
    obj: Model
    fields: set[str] = field(default_factory=set)


@dataclass
class _Execute:
    sql: str
    params: list


class Writes:
    """Writes waiting for ``flush()``, in the order they were asked for."""

    def __init__(self):
        self._steps: list[_Insert | _Update | _Execute] = []
        self._updates: dict[tuple[type, object], _Update] = {}

    def insert(self, objs: Iterable[Model]) -> list[Model]:
        """Insert these new instances (all of one model); their ``pk`` is set at the flush."""
        objs = list(objs)
        if objs:
            if len({type(obj) for obj in objs}) > 1:
                raise ValueError("one insert takes instances of one model")
            self._steps.append(_Insert(objs))
        return objs

    def update(self, obj: Model, fields: Iterable[str]) -> None:
        """Save these fields of a saved instance, with the values it holds at the flush."""
        if obj.pk is None:
            raise ValueError(f"{type(obj).__name__} has no primary key: insert it instead")
        key = (type(obj), obj.pk)
        if key not in self._updates:
            self._updates[key] = _Update(obj)
            self._steps.append(self._updates[key])
        self._updates[key].fields.update(fields)

    def execute(self, sql: str, params: list) -> None:
        """Run a data-modifying statement (``%s`` placeholders, no result wanted)."""
        self._steps.append(_Execute(sql, list(params)))

    def flush(self) -> None:
        steps, self._steps, self._updates = self._steps, [], {}
        if not steps:
            return
        if connection.vendor != "postgresql" or (len(steps) == 1 and isinstance(steps[0], _Execute)):
            for step in steps:
                _run_one(step)
            return
        _run_as_one_statement(steps)


@contextlib.contextmanager
def gathering() -> Iterator[Writes]:
    """The writes gathered by an enclosing ``gathering()`` block, or new ones flushed when
    this block ends (not when it raises: the caller's transaction is rolled back anyway)."""
    outer = _gathered.get()
    if outer is not None:
        yield outer
        return
    writes = Writes()
    token = _gathered.set(writes)
    try:
        yield writes
        writes.flush()
    finally:
        _gathered.reset(token)


def flush_gathered() -> None:
    """Flush what an enclosing ``gathering()`` holds: for code about to read what it wrote."""
    gathered = _gathered.get()
    if gathered is not None:
        gathered.flush()


# --- Elsewhere: the ORM calls they stand for -------------------------------------------
def _run_one(step: _Insert | _Update | _Execute) -> None:
    if isinstance(step, _Insert):
        type(step.objs[0])._default_manager.bulk_create(step.objs)
    elif isinstance(step, _Update):
        step.obj.save(update_fields=sorted(step.fields))
    else:
        with connection.cursor() as cursor:
            cursor.execute(step.sql, step.params)


# --- PostgreSQL: one statement ------------------------------------------------------------
def _run_as_one_statement(steps: list[_Insert | _Update | _Execute]) -> None:
    qn = connection.ops.quote_name
    ctes, params, returning = [], [], []
    inserted_at: dict[int, tuple[str, int]] = {}  # id(instance) -> (its insert's CTE, its row's position)
    for k, step in enumerate(steps):
        name = f"w{k}"
        if isinstance(step, _Insert):
            sql = _insert_sql(step.objs, params, inserted_at, qn)
            inserted_at.update({id(obj): (name, i) for i, obj in enumerate(step.objs)})
            returning.append(k)
        elif isinstance(step, _Update):
            sql = _update_sql(step, params, qn)
            returning.append(k)
        else:
            sql = step.sql
            params.extend(step.params)
        ctes.append(f"{name} AS ({sql})")
    # Identifiers here and below are our CTEs' and the models' own names; every value is a parameter.
    selects = " UNION ALL ".join(f"SELECT {k}, pk FROM w{k}" for k in returning)  # noqa: S608
    selects = selects or "SELECT 0, 0 WHERE FALSE"
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} {selects} ORDER BY 1, 2", params)
        rows = cursor.fetchall()
    pks: dict[int, list] = {}
    for k, pk in rows:
        pks.setdefault(k, []).append(pk)
    for k in returning:
        step = steps[k]
        if isinstance(step, _Update):
            if not pks.get(k):
                raise DatabaseError("Save with update_fields did not affect any rows.")
            continue
        for obj, pk in zip(step.objs, pks.get(k, []), strict=True):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, connection.alias
    for step in steps:  # foreign keys to rows inserted in this statement: their ids are known now
        if isinstance(step, _Insert):
            for obj in step.objs:
                _copy_related_ids(obj)


@functools.cache
def _insert_shape(model: type[Model]) -> tuple[list, list, str]:
    """A model's inserted fields, those of them that are relations, and its INSERT's head."""
    opts, qn = model._meta, connection.ops.quote_name
    fields = [f for f in opts.concrete_fields if f is not opts.auto_field and not f.generated]
    columns = ", ".join(qn(f.column) for f in fields)
    head = f"INSERT INTO {qn(opts.db_table)} ({columns}) VALUES "  # noqa: S608 -- the model's own names
    return fields, [f for f in fields if f.is_relation], head


def _insert_sql(objs: list[Model], params: list, inserted_at: dict, qn) -> str:
    opts = objs[0]._meta
    fields, relations, head = _insert_shape(type(objs[0]))
    rows = []
    for obj in objs:
        at = {f: _inserted_before(obj, f, inserted_at) for f in relations}
        values = []
        for f in fields:
            position = at.get(f)
            if position is not None:
                values.append(f"(SELECT pk FROM {position[0]} ORDER BY pk LIMIT 1 OFFSET {position[1]})")  # noqa: S608
                continue
            if f.is_relation:
                _copy_related_id(obj, f)
            values.append("%s")
            params.append(f.get_db_prep_save(f.pre_save(obj, True), connection=connection))
        rows.append(f"({', '.join(values)})")
    return f"{head}{', '.join(rows)} RETURNING {qn(opts.pk.column)} AS pk"


def _update_sql(step: _Update, params: list, qn) -> str:
    obj, opts = step.obj, step.obj._meta
    assignments = []
    for name in sorted(step.fields):
        f = opts.get_field(name)
        if f.is_relation:
            _copy_related_id(obj, f)
        assignments.append(f"{qn(f.column)} = %s")
        params.append(f.get_db_prep_save(f.pre_save(obj, False), connection=connection))
    params.append(opts.pk.get_db_prep_value(obj.pk, connection))
    return (f"UPDATE {qn(opts.db_table)} SET {', '.join(assignments)} WHERE {qn(opts.pk.column)} = %s"  # noqa: S608
            f" RETURNING {qn(opts.pk.column)} AS pk")


def _inserted_before(obj: Model, f, inserted_at: dict) -> tuple[str, int] | None:
    """Where the instance ``obj.<f>`` (a relation) points to was inserted earlier in this statement."""
    if getattr(obj, f.attname) is not None or not f.is_cached(obj):
        return None
    related = f.get_cached_value(obj)
    return inserted_at.get(id(related)) if related is not None and related.pk is None else None


def _copy_related_id(obj: Model, f) -> None:
    """``obj.<f>_id`` from the instance assigned to ``obj.<f>``, as ``save()`` does, and the
    same refusal of an unsaved one."""
    if getattr(obj, f.attname) is None and f.is_cached(obj):
        related = f.get_cached_value(obj)
        if related is not None:
            if related.pk is None:
                raise ValueError(f"{type(obj).__name__}.{f.name}: the related instance is not saved")
            setattr(obj, f.attname, related.pk)


def _copy_related_ids(obj: Model) -> None:
    for f in _insert_shape(type(obj))[1]:
        _copy_related_id(obj, f)
