"""A year of traffic on the platform, written straight into PostgreSQL.

``fill(cursor, organization_ids, scale)`` generates events, orders in every status with
their line items and tickets, outbox events with their deliveries and attempts, gate calls
and inbound provider messages, each spread over the last 365 days (older rows have smaller
ids, as in life), with ``INSERT … SELECT generate_series``: the database writes millions
of rows without a round trip each. Raw SQL is the point here (bench/, and the tests that
need a database of some size: tests/retention/); the app never writes this way.

``Scale.year()`` is issue 17's year: 1,000 events, 1,000,000 orders, 2,000,000 tickets,
5,000,000 delivery attempts, 2,000,000 gate calls, 1,000,000 inbound messages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    events: int
    orders: int
    attempts_per_delivery: int = 5
    gate_calls: int = 0
    inbound: int = 0

    @classmethod
    def year(cls, fraction: float = 1.0) -> Scale:
        return cls(events=max(int(1000 * fraction), 2), orders=max(int(1_000_000 * fraction), 100),
                   gate_calls=max(int(2_000_000 * fraction), 100), inbound=max(int(1_000_000 * fraction), 100))

    @property
    def tickets(self) -> int:
        return self.orders * TICKETS_PER_COMPLETED_ORDER * COMPLETED_PER_HUNDRED // 100

    @property
    def attempts(self) -> int:
        return self.orders * self.attempts_per_delivery


# Out of every hundred orders: how many end in each status (a year of an on-sale platform:
# half completed, a third abandoned, the rest in flight or refunded).
STATUS_MIX = (["completed"] * 50 + ["expired"] * 30 + ["canceled"] * 5 + ["open"] * 3 + ["payment_pending"] * 4
              + ["rejected"] * 2 + ["unpaid"] * 1 + ["paid"] * 1 + ["refunded"] * 3 + ["partially_refunded"] * 1)
COMPLETED_PER_HUNDRED = STATUS_MIX.count("completed")
TICKETS_PER_COMPLETED_ORDER = 4  # 1,000,000 orders → 2,000,000 tickets
# Sixteen symbols of checkout.models.TICKET_CODE_ALPHABET, one for each hexadecimal digit.
HEX_AS_CODE_SYMBOLS = "ABCDEFGHJKLMNPQR"
STATUSES_SQL = "ARRAY[" + ",".join(f"'{status}'" for status in STATUS_MIX) + "]"

# Each statement gets the organizations' ids and the counts as %(name)s parameters;
# ``AT`` is the i-th of n moments spread over the last year.
AT = "now() - interval '365 days' + interval '365 days' * ({i}::float8 / {n})"

STATEMENTS = [
    ("events", f"""
INSERT INTO ievents_event (public_id, name, description, venue, starts_at, currency, timezone, published,
                           payment_providers, created_at, organization_id)
SELECT 'ev_scale_' || i, 'Event ' || i, '', 'Hall ' || (i %% 20), {AT.format(i="i", n="%(events)s")} + interval '60 days',
       'EUR', 'Europe/Lisbon', true, '[]', {AT.format(i="i", n="%(events)s")},
       (%(orgs)s::bigint[])[1 + i %% cardinality(%(orgs)s::bigint[])]
FROM generate_series(1, %(events)s) AS i"""),
    ("ticket types", """
INSERT INTO ievents_tickettype (public_id, name, price, quantity, reserved, max_per_order, position, event_id)
SELECT 'tt_scale_' || e.id, 'General', 2500, 1000000, 0, 10, 0, e.id
FROM ievents_event e WHERE e.public_id LIKE 'ev_scale_%%'"""),
    ("orders", f"""
INSERT INTO checkout_checkoutsession (public_id, status, version, customer_name, search_name, customer_email, currency,
    amount_total, amount_paid, amount_refunded, expires_at, holds_released, provider, success_url, cancel_url,
    webhook_url, metadata, gate_approved_fingerprint, needs_attention, created_at, updated_at, completed_at,
    event_id, organization_id, details_version, address_key)
SELECT 'cs_scale_' || i, s.status, 3, 'Attendee ' || i, 'attendee ' || i, 'attendee' || i || '@example.com', 'EUR',
       10000, CASE WHEN s.status IN ('completed', 'paid', 'refunded', 'partially_refunded') THEN 10000 ELSE 0 END,
       CASE WHEN s.status = 'refunded' THEN 10000 ELSE 0 END,
       t.at + interval '15 minutes', s.status IN ('expired', 'canceled', 'refunded'), 'stripe', '', '', '', '{{}}',
       '', '', t.at, t.at + interval '15 minutes',
       CASE WHEN s.status = 'completed' THEN t.at + interval '5 minutes' END,
       e.id, e.organization_id, 1, ''
FROM generate_series(1, %(orders)s) AS i
JOIN ievents_event e ON e.public_id = 'ev_scale_' || (1 + i %% %(events)s),
     LATERAL (SELECT ({STATUSES_SQL})[1 + i %% 100] AS status) AS s,
     LATERAL (SELECT {AT.format(i="i", n="%(orders)s")} AS at) AS t"""),
    ("line items", """
INSERT INTO checkout_lineitem (quantity, unit_price, session_id, ticket_type_id)
SELECT 4, 2500, s.id, tt.id FROM checkout_checkoutsession s JOIN ievents_tickettype tt ON tt.event_id = s.event_id
WHERE s.public_id LIKE 'cs_scale_%%'"""),
    ("tickets", f"""
-- Six random symbols (as real codes are: their trigrams are rare) and six unique ones, in
-- the codes' alphabet (hexadecimal digits mapped one to one onto 16 of its symbols), so the
-- admin's search recognises them as codes, as it does real ones.
INSERT INTO checkout_ticket (code, created_at, session_id, ticket_type_id)
SELECT substr(c.code, 1, 4) || '-' || substr(c.code, 5, 4) || '-' || substr(c.code, 9, 4), s.completed_at, s.id, tt.id
FROM checkout_checkoutsession s JOIN ievents_tickettype tt ON tt.event_id = s.event_id,
     generate_series(1, {TICKETS_PER_COMPLETED_ORDER}) AS k,
     LATERAL (SELECT translate(upper(substr(md5(s.id || '-' || k), 1, 6))
                               || lpad(upper(to_hex(s.id * {TICKETS_PER_COMPLETED_ORDER} + k)), 6, '0'),
                               '0123456789ABCDEF', '{HEX_AS_CODE_SYMBOLS}') AS code) AS c
WHERE s.public_id LIKE 'cs_scale_%%' AND s.status = 'completed'"""),
    ("outbox events", """
INSERT INTO webhooks_outboxevent (public_id, type, payload, created_at, organization_id, session_id)
SELECT 'evt_scale_' || s.id, 'checkout.session.' || s.status,
       jsonb_build_object('id', 'evt_scale_' || s.id, 'type', 'checkout.session.' || s.status,
                          'data', jsonb_build_object('object', jsonb_build_object(
                              'id', s.public_id, 'customer', jsonb_build_object('email', s.customer_email)))),
       s.updated_at, s.organization_id, s.id
FROM checkout_checkoutsession s WHERE s.public_id LIKE 'cs_scale_%%'"""),
    ("deliveries", """
INSERT INTO webhooks_delivery (public_id, target_url, status, attempts_count, next_attempt_at, last_status_code,
                               last_error, created_at, updated_at, event_id)
SELECT 'del_scale_' || e.id, 'https://hooks.example.com/in', 'succeeded', %(attempts)s, NULL, 200, '',
       e.created_at, e.created_at, e.id
FROM webhooks_outboxevent e WHERE e.public_id LIKE 'evt_scale_%%'"""),
    ("delivery attempts", """
INSERT INTO webhooks_deliveryattempt (number, started_at, duration_ms, status_code, response_body, error, delivery_id)
SELECT n, d.created_at + n * interval '1 minute', 40, CASE WHEN n = %(attempts)s THEN 200 ELSE 503 END, 'ok', '', d.id
FROM webhooks_delivery d, generate_series(1, %(attempts)s) AS n WHERE d.public_id LIKE 'del_scale_%%'"""),
    ("gate calls", f"""
INSERT INTO webhooks_gatecall (outcome, decision, status_code, latency_ms, message, error, is_test, breaker_open,
                               created_at, event_id, session_id, client_ip, address_key)
SELECT 'allowed', 'allow', 200, 80, '', '', false, false, {AT.format(i="i", n="%(gate_calls)s")},
       s.event_id, s.id, ('10.' || (i %% 250) || '.' || (i / 250 %% 250) || '.1')::inet,
       '10.' || (i %% 250) || '.' || (i / 250 %% 250) || '.1'
FROM generate_series(1, %(gate_calls)s) AS i
JOIN checkout_checkoutsession s ON s.public_id = 'cs_scale_' || (1 + ((i - 1)::bigint * %(orders)s / %(gate_calls)s))"""),
    ("inbound messages", f"""
INSERT INTO webhooks_inboundwebhook (provider, event_id, type, dedupe_key, verified, outcome, error, payload,
                                     received_at, organization_id, session_id)
SELECT 'stripe', 'evt_in_' || i, 'checkout.session.completed', 'stripe:evt_in_' || i, true, 'processed', '',
       '{{"id": "evt_in_' || i || '", "customer_details": {{"email": "' || s.customer_email || '"}}}}',
       {AT.format(i="i", n="%(inbound)s")}, s.organization_id, s.id
FROM generate_series(1, %(inbound)s) AS i
JOIN checkout_checkoutsession s ON s.public_id = 'cs_scale_' || (1 + ((i - 1)::bigint * %(orders)s / %(inbound)s))"""),
]
TABLES = ["ievents_event", "ievents_tickettype", "checkout_checkoutsession", "checkout_lineitem", "checkout_ticket",
          "webhooks_outboxevent", "webhooks_delivery", "webhooks_deliveryattempt", "webhooks_gatecall",
          "webhooks_inboundwebhook"]


def fill(cursor, organization_ids: list[int], scale: Scale, progress=None, vacuum: bool = False) -> None:
    """Write ``scale``'s rows, the events shared out among these organizations (a platform
    holds many organizers; each sees its own), then ANALYZE the tables (as autovacuum would
    soon), so the planner sees the sizes the app will run against. ``vacuum`` (outside a
    transaction only) also sets the visibility map, as autovacuum would over a year, which
    index-only scans rely on."""
    params = {"orgs": list(organization_ids), "events": scale.events, "orders": scale.orders,
              "attempts": scale.attempts_per_delivery, "gate_calls": scale.gate_calls, "inbound": scale.inbound}
    for name, statement in STATEMENTS:
        if progress:
            progress(name)
        cursor.execute(statement, params)
    for table in TABLES:
        cursor.execute(f"{'VACUUM ' if vacuum else ''}ANALYZE {table}")
