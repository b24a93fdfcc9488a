"""The pieces of a fault test: private services, the app's own processes, attendees, checks.

Fault tests stop and restart services, so they never touch the machine's shared ones:

- ``PrivateRedis``: a ``redis-server`` of our own on a free port, no persistence (a restart
  loses every queued message, as a crashed broker without AOF does).
- ``PrivatePostgres``: a throwaway PostgreSQL cluster (``initdb`` in a temporary
  directory, run as the ``postgres`` user when we are root) on a free port.
- ``WebServer``: gunicorn serving the app (threads, so attendees can be concurrent).
- ``CeleryWorker`` (from ``tests/outbound/workers.py``): a real worker, SIGKILL-able.
- ``DedupReceiver``: a webhook receiver that verifies the signature and, like a careful
  receiver, processes each ``webhook-id`` once and only counts repeats.
- ``Attendee``: a browser-like client (cookies, CSRF tokens) walking the checkout pages.
- ``check_invariants``: what must hold in the database after any fault, in plain SQL so it
  reads the test database and a private cluster alike.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.outbound.workers import (
    CeleryWorker,  # noqa: F401 (re-exported for the fixtures)
    wait_until_nothing_more_can_be_sent,  # noqa: F401 (re-exported for the tests)
)
from tests.outbound.workers import test_database_url as _test_database_url
from tests.servers import LocalServer, Received, Reply
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _postgres_bin() -> Path:
    """FAULTS_PG_BIN, else the newest Debian PostgreSQL install (/usr/lib/postgresql/N/bin)."""
    if os.environ.get("FAULTS_PG_BIN"):
        return Path(os.environ["FAULTS_PG_BIN"])
    installed = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()),
                       key=lambda p: int(p.parts[-3]))
    return installed[-1].parent if installed else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _postgres_bin()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_database_url() -> str:
    """The URL of this pytest run's own test database (``test_…``), for child processes."""
    return _test_database_url()


def missing_binaries() -> list[str]:
    missing = [name for name in ("redis-server",) if shutil.which(name) is None]
    missing += [str(PG_BIN / name) for name in ("initdb", "pg_ctl") if not (PG_BIN / name).exists()]
    return missing


# --- Private Redis ------------------------------------------------------------------------
class PrivateRedis:
    """A redis-server of our own; ``stop()`` and ``start()`` again on the same port."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="faults-redis-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(self.answers, timeout, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def queued(self) -> int:
        """Messages waiting in the default Celery queue."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"LLEN celery\r\n")
            return int(sock.recv(64).strip().lstrip(b":"))

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted (by the kernel) but nothing is answered,
        as with a stalled broker or a network path that drops packets."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Shut it down (SIGTERM; nothing is saved, so every queued message is gone)."""
        if self.process and self.process.poll() is None:
            self.thaw()  # a stopped process does not act on SIGTERM
            self.process.terminate()
            self.process.wait(10)


# --- Private PostgreSQL ---------------------------------------------------------------------
class PrivatePostgres:
    """A throwaway cluster: ``initdb`` once, then ``start``/``stop``/``restart`` at will."""

    def __init__(self):
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        if os.geteuid() == 0:  # initdb refuses to run as root: the cluster belongs to postgres
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(arg) for arg in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def init(self) -> PrivatePostgres:
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8")
        return self

    def start(self) -> None:
        # fsync off: the machine does not crash in these tests, only PostgreSQL does, and the
        # operating system keeps what was written. Commits stay synchronous, as in production.
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=100")
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", self.logfile, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown that disconnects every client at once; ``immediate``:
        a crash (no checkpoint; the next start recovers from the write-ahead log)."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


# --- The app's processes ----------------------------------------------------------------------
def app_env(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of a web or worker process of this project, on these services."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({
        "DJANGO_SETTINGS_MODULE": "ievents.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "DEBUG": "1",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
        "LOG_LEVEL": "INFO",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    })
    env.update(extra)
    return env


# FAULTS_ACCESS_LOG=1: gunicorn logs each request with its own duration (``%(L)s``, seconds),
# to tell the server's time from the client's when a timing assertion fails.
ACCESS_LOG = (["--access-logfile", "-", "--access-logformat", "ACCESS %(r)s %(s)s %(L)s"]
              if os.environ.get("FAULTS_ACCESS_LOG") else [])


class WebServer:
    """gunicorn with threaded workers, like a deployment; its log is kept for failures."""

    def __init__(self, env: dict[str, str], *, workers: int = 2, threads: int = 8):
        self.env = env
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="faults-web-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> WebServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "ievents.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--threads", str(self.threads), "--worker-class", "gthread",
             # Keep-alive longer than any pause of an attendee here: gunicorn's 2 s default
             # closes idle connections just as the client reuses one ("Remote end closed").
             "--timeout", "60", "--keep-alive", "75", "--log-level", "warning", *ACCESS_LOG],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def answering():
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.output()}")
            try:
                return requests.get(self.url + "/favicon.ico", timeout=2, allow_redirects=False).status_code < 500
            except requests.RequestException:
                return False

        wait_for(answering, timeout, "gunicorn to answer")
        return self

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def manage(*args: str, env: dict[str, str], timeout: float = 180) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- Seeding ------------------------------------------------------------------------------------
def seed(receiver_url: str, *, quantity: int = 100, slug: str = "faults") -> dict:
    """An organization selling one ticket type through the sandbox, with one webhook endpoint
    for every event type. Called in-process (the pytest database) or through ``seed_in``."""
    from datetime import timedelta

    from django.utils import timezone

    from ievents.models import Event, Organization, Question, TicketType
    from payments.models import IntegrationSettings
    from webhooks.models import WebhookEndpoint

    org = Organization.objects.create(name="Fault Tolerant Events", slug=slug)
    IntegrationSettings.objects.create(organization=org, provider="sandbox")
    event = Event.objects.create(organization=org, name="Chaos Summit", currency="EUR",
                                 starts_at=timezone.now() + timedelta(days=30))
    ticket_type = TicketType.objects.create(event=event, name="General", price=2500, quantity=quantity, max_per_order=10)
    size = Question.objects.create(event=event, text="T-shirt size", kind="choice", choices="S\nM\nL", required=True,
                                   position=0)
    endpoint = WebhookEndpoint.objects.create(organization=org, url=receiver_url, enabled_events=["*"])
    return {"event_id": event.pk, "event_path": event.get_absolute_url(), "qty_field": f"qty_{ticket_type.public_id}",
            "size_field": f"q_{size.pk}", "secret": endpoint.secret, "endpoint_id": endpoint.pk}


def seed_in(env: dict[str, str], receiver_url: str, **options) -> dict:
    """``seed`` in a child process, for a database this pytest process is not connected to."""
    code = ("import json, django; django.setup(); from tests.faults.stack import seed; "
            f"print(json.dumps(seed({receiver_url!r}, **{options!r})))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- A de-duplicating receiver ----------------------------------------------------------------
class DedupReceiver(LocalServer):
    """Verifies each request with ``standardwebhooks`` and processes each ``webhook-id`` once.

    ``processed`` counts, per event id, the requests it acted on (a correct run: 1 each);
    ``repeats`` the re-sent ones it acknowledged without acting (at-least-once allows them).
    ``hold_first=n``: the first n requests are read and never answered (the connection stays
    open until the server stops), as a receiver stuck in a slow database would; they are
    not processed.
    """

    def __init__(self, secret: str = "", *, hold_first: int = 0, port: int = 0):
        self.secret = secret
        self.hold_first = hold_first
        self.processed: Counter[str] = Counter()
        self.repeats: Counter[str] = Counter()
        self.held: list[str] = []
        self.bad_signatures: list[str] = []
        self._state = threading.Lock()
        super().__init__(self._answer, port=port)

    def _answer(self, request: Received) -> Reply:
        try:
            payload = Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            with self._state:
                self.bad_signatures.append(str(exc))
            return Reply(401, {"error": "bad signature"})
        event_id = payload["id"]
        with self._state:
            if len(self.held) < self.hold_first:
                self.held.append(event_id)
                return Reply(hang=True)
            if self.processed[event_id]:
                self.repeats[event_id] += 1
            else:
                self.processed[event_id] += 1
        return Reply(200, {"received": event_id})


# --- Attendees ----------------------------------------------------------------------------------
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ALERT = re.compile(r'role="alert"[^>]*>(.*?)</', re.S)


class FlowError(AssertionError):
    pass


class Attendee:
    """One buyer with their own cookie jar, walking the pages as a browser does."""

    def __init__(self, base_url: str, seed: dict, *, timeout: float = 30):
        self.base = base_url
        self.seed = seed
        self.timeout = timeout
        self.http = requests.Session()
        self.session_id = ""
        self.page: requests.Response | None = None

    def _expect(self, response: requests.Response) -> requests.Response:
        if response.status_code != 200:
            raise FlowError(f"{response.request.method} {response.url} answered {response.status_code}")
        self.page = response
        return response

    def get(self, path: str) -> requests.Response:
        return self._expect(self.http.get(self.base + path, timeout=self.timeout))

    def post(self, data: dict) -> requests.Response:
        """Submit the form of the current page, with its CSRF token."""
        token = CSRF.search(self.page.text)
        if not token:
            raise FlowError(f"no form on {self.page.url}")
        response = self.http.post(self.page.url, data={"csrfmiddlewaretoken": token.group(1), **data},
                                  timeout=self.timeout)
        return self._expect(response)

    def take_tickets(self, quantity: int = 1) -> str:
        self.get(self.seed["event_path"])
        self.post({self.seed["qty_field"]: str(quantity)})
        match = re.search(r"/c/(cs_[A-Za-z0-9_]+)/$", self.page.url)
        if not match:
            raise FlowError(f"tickets not reserved: ended on {self.page.url}")
        self.session_id = match.group(1)
        return self.session_id

    def give_details(self, email: str = "ana@example.com") -> requests.Response:
        return self.post({"name": "Ana Silva", "email": email, self.seed["size_field"]: "M"})

    def buy(self, quantity: int = 1) -> str:
        """The whole purchase through the sandbox; returns the session id once tickets show."""
        self.take_tickets(quantity)
        self.give_details()
        if not self.page.url.endswith("/review/"):
            raise FlowError(f"details not accepted: {self.alert() or self.page.url}")
        self.post({"provider": "sandbox"})
        self.post({"outcome": "success"})
        if "ticket-code" not in self.page.text:
            raise FlowError(f"no ticket codes on {self.page.url}")
        return self.session_id

    def alert(self) -> str:
        match = ALERT.search(self.page.text) if self.page is not None else None
        return match.group(1).strip() if match else ""


# --- What must hold after any fault -------------------------------------------------------------
@dataclass
class Invariants:
    statuses: Counter = field(default_factory=Counter)
    deliveries: Counter = field(default_factory=Counter)
    events: int = 0
    attempts: int = 0
    problems: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not self.problems


def check_invariants(database_url: str, *, settled: bool = True) -> Invariants:
    """Read the database and list everything impossible in it.

    - no ticket type oversold, and ``reserved`` equals the tickets held or sold by the
      sessions that still hold them;
    - every session's status is where its history says, reached by allowed transitions
      only, its ``version`` one more than its transitions, and tickets exist exactly for
      completed sessions (one per ticket bought);
    - no session left ``paid`` (payment and completion share one transaction);
    - deliveries: attempt numbers 1..n without gaps; a succeeded one has a 2xx attempt;
      with ``settled``, nothing pending or leased any more.
    """
    from checkout.state import TRANSITIONS

    found = Invariants()
    problems = found.problems
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        q = conn.execute
        for tt_id, name, quantity, reserved, held in q("""
            SELECT tt.id, tt.name, tt.quantity, tt.reserved,
                   COALESCE((SELECT SUM(li.quantity) FROM checkout_lineitem li
                               JOIN checkout_checkoutsession s ON s.id = li.session_id
                              WHERE li.ticket_type_id = tt.id AND NOT s.holds_released), 0)
              FROM ievents_tickettype tt"""):
            if reserved > quantity:
                problems.append(f"ticket type {tt_id} {name!r} oversold: {reserved} reserved of {quantity}")
            if reserved != held:
                problems.append(f"ticket type {tt_id} {name!r}: reserved {reserved} but sessions hold {held}")
        sessions = q("SELECT id, public_id, status, version, holds_released FROM checkout_checkoutsession").fetchall()
        history: dict[int, list[tuple]] = {}
        for session_id, from_s, to_s, trigger in q(
                "SELECT session_id, from_status, to_status, trigger FROM checkout_transition ORDER BY id"):
            history.setdefault(session_id, []).append((from_s, to_s, trigger))
        tickets = dict(q("SELECT session_id, COUNT(*) FROM checkout_ticket GROUP BY session_id").fetchall())
        bought = dict(q("SELECT session_id, SUM(quantity) FROM checkout_lineitem GROUP BY session_id").fetchall())
        for session_id, public_id, status, version, released in sessions:
            found.statuses[status] += 1
            steps = history.get(session_id, [])
            current = "open"
            for from_s, to_s, trigger in steps:
                if from_s != current:
                    problems.append(f"{public_id}: transition from {from_s} but it was {current}")
                if TRANSITIONS.get((from_s, trigger)) != to_s:
                    problems.append(f"{public_id}: {from_s} --{trigger}--> {to_s} is not in the table")
                current = to_s
            if current != status:
                problems.append(f"{public_id}: status {status} but its history ends at {current}")
            if version != 1 + len(steps):
                problems.append(f"{public_id}: version {version} after {len(steps)} transitions")
            if status == "paid":
                problems.append(f"{public_id}: left paid, never completed")
            expected_tickets = int(bought.get(session_id, 0)) if status == "completed" else 0
            if tickets.get(session_id, 0) != expected_tickets:
                problems.append(f"{public_id} ({status}): {tickets.get(session_id, 0)} tickets, "
                                f"expected {expected_tickets}")
            if status in ("expired", "canceled") and not released:
                problems.append(f"{public_id}: {status} but still holds its tickets")
        found.events = q("SELECT COUNT(*) FROM webhooks_outboxevent").fetchone()[0]
        attempts: dict[int, list[tuple]] = {}
        for delivery_id, number, code in q("SELECT delivery_id, number, status_code FROM webhooks_deliveryattempt"):
            attempts.setdefault(delivery_id, []).append((number, code))
            found.attempts += 1
        for delivery_id, status, count, lease in q(
                "SELECT id, status, attempts_count, lease_until FROM webhooks_delivery"):
            found.deliveries[status] += 1
            made = attempts.get(delivery_id, [])
            if {n for n, _ in made} != set(range(1, count + 1)):
                problems.append(f"delivery {delivery_id}: attempts_count {count} but attempts {sorted(n for n, _ in made)}")
            if status == "succeeded" and not any(code is not None and 200 <= code < 300 for _, code in made):
                problems.append(f"delivery {delivery_id}: succeeded without a 2xx attempt")
            if settled and (status == "pending" or lease is not None):
                problems.append(f"delivery {delivery_id}: still {status} (lease {lease}) after recovery")
    return found


def event_ids(database_url: str) -> set[str]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return {row[0] for row in conn.execute("SELECT public_id FROM webhooks_outboxevent")}


def delivery_statuses(database_url: str) -> Counter:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return Counter(dict(conn.execute("SELECT status, COUNT(*) FROM webhooks_delivery GROUP BY status").fetchall()))


def all_overdue_for_the_sweep(database_url: str, sweep_seconds: float) -> bool:
    """Every pending delivery has been due for longer than one sweep interval."""
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        fresh = conn.execute("SELECT COUNT(*) FROM webhooks_delivery WHERE status = 'pending' AND next_attempt_at > "
                             "now() - make_interval(secs => %s)", [sweep_seconds]).fetchone()[0]
    return fresh == 0


def all_delivered(database_url: str) -> bool:
    counts = delivery_statuses(database_url)
    return bool(counts) and set(counts) == {"succeeded"}


def record_observation(name: str, figures: dict) -> None:
    """Keep what a fault test measured (test-artifacts/faults/), for docs/reliability.md."""
    folder = ROOT / "test-artifacts" / "faults"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True, default=str))
    print(f"\n[{name}] " + json.dumps(figures, sort_keys=True, default=str))
