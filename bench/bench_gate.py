"""The pre-payment gate's cost to the attendee: added latency, and time to a decision.

Served the way production serves it: gunicorn (one sync worker, so requests do not queue
behind each other's gate calls and the numbers are per request), `DEBUG=0`, a throwaway
PostgreSQL database. The gate is a real HTTP server on 127.0.0.1 (`tests/servers.py`)
that answers a fixed time after each request arrives (its first line read: the server's
own parsing is inside that time, as in a gate that "answers in 20 ms");
`WEBHOOK_ALLOW_PRIVATE_TARGETS=1` lets production settings call it over loopback. The rate
limit and the breaker threshold are raised out of the way except where the breaker is the
point.

What is timed is the attendee's "Continue": the `POST` of the details form alone (its
redirect is not followed), by a fresh attendee each time (its own session, created first
and not timed). The gate-off, gate-on and breaker-open submits take turns, one of each
per round, so that load from elsewhere on the machine weighs on all three alike.

- **Added latency**: the median submit with a gate answering in `GATE_DELAY` ms, minus that
  delay, minus the median submit with the gate off. What remains: building and signing the
  payload, the rate limit's count per address (a first Continue needs none per session),
  the HTTP round trip over a kept-alive connection, the call log and the approval after the
  answer, and what this machine adds to any round trip (waking a sleeping server and
  client). Goal: at most 8 ms.
- **The same over a bare client's round trip**: each round also times one bare
  `requests.Session` POST of a payload-sized body to the same gate, and that median replaces
  the nominal delay: the added latency that is the checkout's own, without the gate
  server's. Both figures carry the goal; the first is the issue's definition to the letter.
- **Hanging gate**: a gate that accepts the connection and never answers, timeout 1000 ms,
  breaker out of the way: every submit waits for the deadline. Goal: decided within the
  timeout + 100 ms (the worst sample is reported).
- **Breaker open**: the same hanging gate with its breaker open: the policy applies
  without a call, the rate limit uncounted and no row read; what remains is the call log
  and the approval (two statements). Reported as the median submit minus the gate-off
  median. Goal: < 5 ms.

Knobs (environment): `BENCH_GATE_SAMPLES` (submits per phase, default 150),
`BENCH_GATE_DELAY_MS` (default 20).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

import requests

from tests.servers import LocalServer, Reply

from .bench_checkout import CSRF, SEED, Attendee
from .common import Figure, free_port, gunicorn_server, manage, percentile, production_env, shell_json, throwaway_postgres

SAMPLES = int(os.environ.get("BENCH_GATE_SAMPLES", "150"))
GATE_DELAY_MS = float(os.environ.get("BENCH_GATE_DELAY_MS", "20"))
HANGING_TIMEOUT_MS = 1000
HANGING_SAMPLES = 8

GATE_SEED = """
from ievents.models import Event
from webhooks.models import GateSettings
gate = GateSettings.objects.create(event=Event.objects.get(), enabled=False, url="http://127.0.0.1:9/", timeout_ms=3000)
print(gate.pk)
"""


def _set_gate(database_url: str, **fields) -> None:
    import psycopg
    from psycopg import sql

    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in fields)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE webhooks_gatesettings SET {}").format(assignments), list(fields.values()))


def _continue(base: str, seed: dict, *, expect: int) -> float:
    """Seconds for one "Continue" (the POST alone, its redirect not followed) by a new attendee."""
    attendee = Attendee(base, seed)
    form = attendee.start()
    token = CSRF.search(form.text).group(1)
    data = {"csrfmiddlewaretoken": token, "name": "Bench Buyer", "email": "buyer@example.com", seed["size_field"]: "M"}
    t0 = time.monotonic()
    response = attendee.http.post(form.url, data=data, allow_redirects=False, timeout=30)
    seconds = time.monotonic() - t0
    if response.status_code != expect or (expect == 200 and 'role="alert"' not in response.text):
        raise RuntimeError(f"unexpected answer to Continue: {response.status_code} (wanted {expect})")
    return seconds


def _interleaved(base: str, seed: dict, database_url: str, rounds: int, setups: dict[str, dict],
                 gate_url: str) -> dict[str, list]:
    """One submit per set-up per round, set-ups taking turns, so that whatever else the
    machine is doing weighs on each of them alike; and in each round one bare POST to the
    answering gate (``"bare"``), the gate's own answer time as any client sees it."""
    times: dict[str, list[float]] = {name: [] for name in (*setups, "bare")}
    bare = requests.Session()
    body = json.dumps({"data": {"object": {"padding": "x" * 1500}}}).encode()  # about a real payload's size
    for _ in range(rounds):
        for name, fields in setups.items():
            _set_gate(database_url, **fields)
            times[name].append(_continue(base, seed, expect=302))
        t0 = time.monotonic()
        bare.post(gate_url, data=body, headers={"Content-Type": "application/json"}, timeout=30).raise_for_status()
        times["bare"].append(time.monotonic() - t0)
    return times


def _gate_call_latencies(database_url: str, where: str = "status_code = 200") -> list[int]:
    """``latency_ms`` of the logged gate calls matching ``where`` (by default: the answered ones)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(f"SELECT latency_ms FROM webhooks_gatecall WHERE {where}").fetchall()
    return [row[0] for row in rows]


def _ms(seconds: float) -> float:
    return seconds * 1000


# What a missed goal's note says: what the gate's share is made of, counted where it can be.
MISSED = ("missed on this run: beyond Continue without a gate, a gate adds three statements to a first Continue "
          "(the rate limit's count per address, the call log, the approval) and two with its breaker open (the call "
          "log, the approval), "
          "tests/gate/test_gate_queries.py holds those counts, and reads none of the rows its payload lists "
          "(built from the rows the request saved); the rest is building and signing the payload and the round "
          "trip, so compare with the load average this run was measured under")


def run() -> list[Figure]:
    port = free_port()
    env = production_env(
        "", PUBLIC_BASE_URL=f"https://127.0.0.1:{port}", WEBHOOK_ALLOW_PRIVATE_TARGETS="1",
        GATE_RATE_LIMIT_PER_SESSION="1000000", GATE_RATE_LIMIT_PER_IP="1000000", GATE_BREAKER_FAILURES="1000000",
    )
    with throwaway_postgres("gate", migrate_env=env) as database_url:
        env["DATABASE_URL"] = database_url
        manage("collectstatic", "--noinput", "-v0", env=env)
        seed = shell_json(SEED, env)
        shell_json(GATE_SEED, env)
        with gunicorn_server(env, workers=1, port=port) as base, \
                LocalServer(Reply(200, {}, delay=GATE_DELAY_MS / 1000)) as answering, \
                LocalServer(Reply(hang=True)) as hanging:
            far = datetime.now(tz=UTC) + timedelta(hours=1)
            setups = {
                "off": {"enabled": False},
                "on": {"enabled": True, "url": answering.url, "timeout_ms": 3000, "breaker_open_until": None},
                # Policy allow, so this answer is a redirect like the others and only the decision differs.
                "open": {"enabled": True, "url": hanging.url, "on_error": "allow", "breaker_open_until": far},
            }
            _interleaved(base, seed, database_url, 10, setups, answering.url)  # warm up imports, caches, connections
            times = _interleaved(base, seed, database_url, SAMPLES, setups, answering.url)
            called_while_open = len(hanging.requests)
            call_latencies = _gate_call_latencies(database_url)

            _set_gate(database_url, enabled=True, url=hanging.url, timeout_ms=HANGING_TIMEOUT_MS, on_error="block",
                      breaker_open_until=None)
            hang = [_continue(base, seed, expect=200) for _ in range(HANGING_SAMPLES)]
            gave_up_after = _gate_call_latencies(database_url, "status_code IS NULL AND NOT breaker_open")

    off, on, broken = times["off"], times["on"], times["open"]
    off_p50, on_p50, open_p50 = (_ms(percentile(x, 50)) for x in (off, on, broken))
    off_p95, on_p95 = _ms(percentile(off, 95)), _ms(percentile(on, 95))
    bare_p50 = _ms(percentile(times["bare"], 50))
    return [
        Figure("Continue with the gate off, median", off_p50, "ms", note=f"p95 {off_p95:.1f} ms; {SAMPLES} submits"),
        Figure(f"Continue with a gate answering in {GATE_DELAY_MS:.0f} ms, median", on_p50, "ms",
               floor=off_p50 + GATE_DELAY_MS, note=f"p95 {on_p95:.1f} ms; floor = gate off + the gate's own delay"),
        Figure("Gate's added latency, median", on_p50 - GATE_DELAY_MS - off_p50, "ms", goal="≤ 8 ms",
               note="median with gate − gate's delay − median without gate"
                    + (f"; {MISSED}" if on_p50 - GATE_DELAY_MS - off_p50 > 8 else "")),
        Figure("The gate's answer time seen by a bare client, median", bare_p50, "ms", floor=GATE_DELAY_MS,
               note="a requests.Session POST of a payload-sized body to the same gate server, one per round: "
                    "the gate's delay plus what this machine takes to wake a sleeping server and client"),
        Figure("Gate's added latency over a bare client's round trip, median", on_p50 - bare_p50 - off_p50, "ms",
               goal="≤ 8 ms", note="median with gate − bare client's median − median without gate"
               + (f"; {MISSED}" if on_p50 - bare_p50 - off_p50 > 8 else "")),
        Figure("Gate's added latency, p95", on_p95 - GATE_DELAY_MS - off_p95, "ms",
               note="p95 with gate − gate's delay − p95 without gate"),
        Figure("HTTP client's share: logged call latency − gate's delay, median",
               percentile(call_latencies, 50) - GATE_DELAY_MS, "ms",
               note="whole ms, as logged: signing, the pinned-address connection pool, the watchdog, and the gate "
                    "server's handling after the request's first line; the rest of the added latency is three statements "
                    "(the rate limit's count per address, the call log, the approval) and building the payload; "
                    "tests/gate/test_gate_queries.py holds the count"),
        Figure(f"Time to a decision, hanging gate (timeout {HANGING_TIMEOUT_MS} ms), worst", _ms(max(hang)), "ms",
               goal=f"≤ {HANGING_TIMEOUT_MS + 100} ms", floor=HANGING_TIMEOUT_MS,
               note=f"median {_ms(percentile(hang, 50)):.0f} ms over {HANGING_SAMPLES} submits; policy block"),
        Figure("Hanging gate: the HTTP client's own time to give up, worst", max(gave_up_after), "ms",
               goal=f"≤ {HANGING_TIMEOUT_MS + 100} ms", floor=HANGING_TIMEOUT_MS,
               note="latency logged for the hanging calls: the deadline's precision, without the page around it"),
        Figure("Decision cost with the breaker open, median", open_p50 - off_p50, "ms", goal="< 5 ms",
               note=f"median submit {open_p50:.1f} ms vs {off_p50:.1f} ms with the gate off; "
                    f"gate called {called_while_open} times while open"
                    + (f"; {MISSED}" if open_p50 - off_p50 >= 5 else "")),
    ]
