"""The on-sale rush through the API: 1,000 holds asked by 48 clients for 200 tickets.

gunicorn (sync workers) with production settings (`DEBUG=0`, real secrets) on a throwaway
PostgreSQL database. An organizer's own server sells an on-sale through the API: 48 client
threads send, each as soon as it has its answer, 1,000 `POST /v1/checkout/sessions` for one
ticket of the same type (200 tickets) with the organization's API key. 200 get a session
(201); the other 800 get the documented sold-out answer (409 `sold_out`), never a server
error.

The *floor* is GET / (the home page: one read and a template) asked 1,000 times by the
same 48 clients on the same server just before: the rate and latency of a cheap page under
the same load. Issue 26: a sold-out answer must cost about a cheap page, its rate ≥ 60% of
GET /'s (its p99 at most 2× GET /'s is bench_onsale's bound, for the pages). The rate is
the sold-out answers' own: those answered after the last hold was taken (every one of them
a sold-out answer) over that time, and so are their p50/p99. The whole rush's rate is
shown beside it; it also pays for the 200 holds, each a session, its line items, its
`checkout.session.created` event and their commit.

The same rush is run again for a second event with an `Idempotency-Key` on every request
(a new one each, as a careful client sends): each is claimed before it runs (one insert)
and its answer kept for replays (one update; `ievents/idempotency.py`), two writes a
request the plain rush does not pay.

Reported: holds taken (201 answers; the database's sessions and reserved count checked
too), server errors and requests without an answer (0, over all the phases), sold-out
answers, the rates, the p50/p99 of a sold-out answer beside GET /'s, and the app's and the
database's CPU per request: over the rush, and per sold-out answer (500 more requests once
sold out, every one refused), beside GET /'s (CPU per request hardly depends on what else
the machine does; a rate does).

Knobs (environment): `BENCH_API_RUSH_REQUESTS` (default 1000), `BENCH_API_RUSH_TICKETS`
(default 200), `BENCH_API_RUSH_CLIENTS` (default 48), `BENCH_WORKERS` (gunicorn workers,
default 2 × cores + 1).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

from .common import CpuMeter, Figure, gunicorn_server, manage, percentile, production_env, shell_json, throwaway_postgres

REQUESTS = int(os.environ.get("BENCH_API_RUSH_REQUESTS", "1000"))
TICKETS = int(os.environ.get("BENCH_API_RUSH_TICKETS", "200"))
CLIENTS = int(os.environ.get("BENCH_API_RUSH_CLIENTS", "48"))
WORKERS = int(os.environ.get("BENCH_WORKERS", str(2 * (os.cpu_count() or 1) + 1)))

SEED = """
import json
from datetime import timedelta
from django.utils import timezone
from ievents.models import ApiKey, Event, Organization, TicketType
org = Organization.objects.create(name="Bench API rush", slug="bench-api-rush")
event = Event.objects.create(organization=org, name="Sold Out Through The API", currency="EUR",
                             starts_at=timezone.now() + timedelta(days=30))
tt = TicketType.objects.create(event=event, name="General", price=4500, quantity=%(tickets)d, max_per_order=4)
# The same on-sale again, for the rush whose every request carries an Idempotency-Key.
keyed = Event.objects.create(organization=org, name="Sold Out Through The API, keyed", currency="EUR",
                             starts_at=timezone.now() + timedelta(days=30))
keyed_tt = TicketType.objects.create(event=keyed, name="General", price=4500, quantity=%(tickets)d, max_per_order=4)
key = ApiKey.issue(org, name="box office")[1]
print(json.dumps({"key": key, "event": event.public_id, "ticket_type": tt.public_id, "event_pk": event.pk,
                  "keyed": keyed.public_id, "keyed_ticket_type": keyed_tt.public_id, "keyed_pk": keyed.pk}))
"""

COUNT = """
import json
from checkout.models import CheckoutSession
from ievents.models import TicketType
print(json.dumps({
    "sessions": CheckoutSession.objects.filter(event_id=%(event)d).count(),
    "reserved": sum(TicketType.objects.filter(event_id=%(event)d).values_list("reserved", flat=True)),
}))
"""


@dataclass
class Phase:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=dict)  # by answer: "201", "sold_out", "200"
    answered_at: dict[str, list[float]] = field(default_factory=dict)
    server_errors: int = 0
    no_answer: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu: tuple[float, float] = (0.0, 0.0)

    started: float = 0.0

    def note(self, answer: str, took: float) -> None:
        with self.lock:
            self.latencies.setdefault(answer, []).append(took)
            self.answered_at.setdefault(answer, []).append(time.monotonic())

    @property
    def answers(self) -> int:
        return sum(len(values) for values in self.latencies.values())

    def after_sell_out(self) -> list[float]:
        """The latencies of the sold-out answers given after the last hold was taken."""
        last_hold = max(self.answered_at.get("201", []), default=self.started)
        return [took for took, at in zip(self.latencies.get("sold_out", []), self.answered_at.get("sold_out", []))
                if at > last_hold]

    def sold_out_rate(self) -> tuple[float, int, float]:
        """Answers per second once the last hold was taken (every answer after it is a sold-out
        one): what a refused caller costs the server. Also how many, over how long."""
        last_hold = max(self.answered_at.get("201", []), default=self.started)
        after = [at for at in self.answered_at.get("sold_out", []) if at > last_hold]
        window = self.started + self.seconds - last_hold
        return (len(after) / window if window > 0 else 0.0), len(after), window


def _closed_loop(count: int, ask) -> Phase:
    """``count`` requests from CLIENTS threads, each asking again as soon as it is answered."""
    phase = Phase()
    remaining = iter(range(count))
    take = threading.Lock()

    def client():
        http = requests.Session()
        while True:
            with take:
                if next(remaining, None) is None:
                    return
            t0 = time.monotonic()
            try:
                response = ask(http)
            except requests.RequestException as exc:
                phase.no_answer.append(str(exc)[:200])
                continue
            took = time.monotonic() - t0
            if response.status_code >= 500:
                with phase.lock:
                    phase.server_errors += 1
            elif response.status_code == 409 and response.json().get("error", {}).get("code") == "sold_out":
                phase.note("sold_out", took)
            elif response.status_code in (200, 201):
                phase.note(str(response.status_code), took)
            else:
                phase.unexpected.append(f"{response.status_code} {response.text[:120]}")

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    phase.started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.seconds = time.monotonic() - phase.started
    return phase


def _measured(meter: CpuMeter, count: int, ask) -> Phase:
    before = meter.snapshot()
    phase = _closed_loop(count, ask)
    phase.cpu = meter.since(before)
    return phase




def _ms(values: list[float], pct: float) -> float:
    return percentile(values, pct) * 1000 if values else 0.0


def _body(event: str, ticket_type: str) -> str:
    return json.dumps({"event": event, "line_items": [{"ticket_type": ticket_type, "quantity": 1}],
                       "customer_email": "rush@example.com"})


def run() -> list[Figure]:
    env = production_env("")
    with throwaway_postgres("api_rush", migrate_env=env) as database_url:
        env["DATABASE_URL"] = database_url
        manage("collectstatic", "--noinput", "-v0", env=env)  # DEBUG=0 serves the manifest's names
        seed = shell_json(SEED % {"tickets": TICKETS}, env)
        headers = {"Authorization": f"Bearer {seed['key']}", "Content-Type": "application/json",
                   "X-Forwarded-Proto": "https"}
        plain, keyed = _body(seed["event"], seed["ticket_type"]), _body(seed["keyed"], seed["keyed_ticket_type"])

        def hold(http):
            return http.post(base + "/v1/checkout/sessions", data=plain, headers=headers, timeout=120)

        def keyed_hold(http):
            return http.post(base + "/v1/checkout/sessions", data=keyed, timeout=120,
                             headers={**headers, "Idempotency-Key": str(uuid.uuid4())})

        def home(http):
            return http.get(base + "/", headers={"X-Forwarded-Proto": "https"}, timeout=120)

        with gunicorn_server(env, workers=WORKERS) as base:
            meter = CpuMeter(base.pid, database_url)
            _closed_loop(min(CLIENTS * 2, REQUESTS), home)  # every worker connected and warm
            floor = _measured(meter, REQUESTS, home)
            rush = _measured(meter, REQUESTS, hold)
            # Once sold out, every request is a refusal: their CPU apart from the holds', beside
            # GET /'s (CPU per request hardly depends on what else the machine is doing).
            refused = _measured(meter, REQUESTS // 2, hold)
            keyed_rush = _measured(meter, REQUESTS, keyed_hold)
        counted = shell_json(COUNT % {"event": seed["event_pk"]}, env)
        keyed_counted = shell_json(COUNT % {"event": seed["keyed_pk"]}, env)

    held = rush.latencies.get("201", [])
    sold_out = rush.latencies.get("sold_out", [])
    keyed_sold_out = keyed_rush.latencies.get("sold_out", [])
    home_ms = floor.latencies.get("200", [])
    phases = (floor, rush, refused, keyed_rush)
    sold_out_rate, after, window = rush.sold_out_rate()
    steady = rush.after_sell_out()

    def rate(phase: Phase) -> float:
        return phase.answers / phase.seconds

    def cpu(phase: Phase) -> float:
        return sum(phase.cpu) / max(phase.answers, 1) * 1000

    def cpu_split(phase: Phase) -> str:
        app, db = phase.cpu
        return f"app {app / max(phase.answers, 1) * 1000:.2f} ms, database {db / max(phase.answers, 1) * 1000:.2f} ms"

    return [
        Figure("holds taken (201)", len(held), "holds", goal=f"= {TICKETS}",
               note=f"in the database: {counted['sessions']} sessions, {counted['reserved']} reserved"),
        Figure("tickets reserved (database)", counted["reserved"], "tickets", goal=f"= {TICKETS}"),
        Figure("server errors", sum(phase.server_errors for phase in phases), "responses", goal="0",
               note="5xx answers in all the phases"),
        Figure("requests without an answer", sum(len(phase.no_answer) for phase in phases), "requests", goal="0",
               note="; ".join([text for phase in phases for text in phase.no_answer][:2])),
        Figure("sold-out answers (409)", len(sold_out), "answers", goal=f"= {REQUESTS - TICKETS}",
               note=f"unexpected answers: {sum(len(phase.unexpected) for phase in phases)} "
                    f"{[text for phase in phases for text in phase.unexpected][:2]}"),
        Figure("sold-out answers per second", sold_out_rate, "requests/s", goal="≥ 60% of the floor",
               floor=rate(floor),
               note=f"the {after} answers after the last hold was taken, in {window:.1f} s (all sold-out); floor = "
                    f"GET / asked {REQUESTS} times by the same {CLIENTS} clients ({floor.seconds:.1f} s)"),
        Figure("answers per second, the whole rush", rate(rush), "requests/s", floor=rate(floor),
               note=f"{REQUESTS} POSTs in {rush.seconds:.1f} s, the {TICKETS} holds taken (a session, its line "
                    "items, its event and their commit each) included"),
        Figure("sold-out answer, p50", _ms(steady, 50), "ms", floor=_ms(home_ms, 50),
               note="after the last hold was taken; floor = GET / p50"),
        Figure("sold-out answer, p99", _ms(steady, 99), "ms", floor=_ms(home_ms, 99),
               note=f"after the last hold was taken (before it, p99 {_ms(sold_out, 99):.0f} ms: queued behind the "
                    f"holds); floor = GET / p99 under the same {CLIENTS} clients. In a closed loop a latency is "
                    "the clients over the rate: the rate's goal is this one's (the 2× bound is bench_onsale's)"),
        Figure("CPU per sold-out answer", cpu(refused), "ms", floor=cpu(floor),
               note=f"{refused.answers} more POSTs once sold out ({len(refused.latencies.get('sold_out', []))} "
                    f"sold-out answers, {refused.server_errors} errors), {cpu_split(refused)}; floor = GET /'s, "
                    f"{cpu_split(floor)}"),
        Figure("taking a hold (201), p50", _ms(held, 50), "ms", goal="lower is better"),
        Figure("CPU per request", cpu(rush), "ms", floor=cpu(floor),
               note=f"rush: {cpu_split(rush)}; GET /: {cpu_split(floor)}"),
        Figure("with an Idempotency-Key: holds taken (201)", len(keyed_rush.latencies.get("201", [])), "holds",
               goal=f"= {TICKETS}", note=f"in the database: {keyed_counted['sessions']} sessions, "
                                         f"{keyed_counted['reserved']} reserved; sold out {len(keyed_sold_out)}"),
        Figure("with an Idempotency-Key: sold-out answers per second", keyed_rush.sold_out_rate()[0], "requests/s",
               floor=rate(floor), note="every POST with its own key: each is claimed before it runs and its answer "
                                       f"kept for replays (two writes each); the whole rush {rate(keyed_rush):.0f}/s"),
        Figure("with an Idempotency-Key: sold-out answer, p99", _ms(keyed_rush.after_sell_out(), 99), "ms",
               floor=_ms(home_ms, 99), note="after the last hold was taken"),
        Figure("with an Idempotency-Key: CPU per request", cpu(keyed_rush), "ms", floor=cpu(floor),
               note=cpu_split(keyed_rush)),
    ]
