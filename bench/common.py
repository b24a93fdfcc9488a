"""What every benchmark shares: the Figure it reports, and the real services it runs against.

A benchmark is a module ``bench/bench_<name>.py`` with ``run() -> list[Figure]``;
``python -m bench.run_all`` runs them all and rewrites ``docs/benchmarks.md``.

Helpers:

- ``Figure``: one measured number, with an optional ``floor`` (the same measurement for a
  minimal baseline on the same machine in the same run), so the report can show a ratio
  that means something on any machine.
- ``percentile`` / ``summarize``: latency statistics without numpy.
- ``throwaway_postgres(name)``: creates and migrates a database ``iev_bench_<name>_<pid>``,
  yields its URL, drops it afterwards.
- ``gunicorn_server(env, workers=...)``: starts gunicorn on a free port with that
  environment, waits until it answers, yields its base URL (``.pid`` is the master's
  process id), stops it.
- ``CpuMeter``: CPU seconds spent by the server's workers and the database's backends
  during a phase; per-operation CPU hardly depends on what else the machine is doing.
- ``production_env(database_url)``: the environment of a DEBUG=0 deployment (real
  secret key, Fernet key, allowed hosts) minus TLS, which a loopback benchmark lacks.
- ``machine()``: CPU, cores, memory, Python/Django/PostgreSQL versions, for the report.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


@dataclass
class Figure:
    """One measured number. ``floor`` is the same measurement for a minimal baseline."""

    name: str
    value: float
    unit: str
    goal: str = ""
    floor: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.floor in (None, 0):
            return None
        return self.value / self.floor


class BenchmarkUnavailable(RuntimeError):
    """A service the benchmark needs (PostgreSQL, gunicorn) is not there."""


# --- statistics -------------------------------------------------------------------------

def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0–100) by linear interpolation, like numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    return {
        "p50": percentile(latencies_s, 50) * 1000,
        "p95": percentile(latencies_s, 95) * 1000,
        "p99": percentile(latencies_s, 99) * 1000,
        "max": max(latencies_s) * 1000,
    }


# --- machine ------------------------------------------------------------------------------

def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return None


def postgres_version(url: str = POSTGRES_ADMIN_URL) -> str:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # the report still says something useful without Postgres
        return f"unavailable ({type(exc).__name__})"


def commit_latency_ms(url: str = POSTGRES_ADMIN_URL) -> str:
    """Median time of a one-row insert and its commit (which waits for the WAL to reach the
    disk), on a scratch table dropped afterwards. The disk's flush time differs tenfold
    between machines, and every write the checkout makes pays it."""
    try:
        import psycopg

        table = f"iev_bench_commit_probe_{os.getpid()}"
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (x int)")
            try:
                times = []
                for _ in range(60):
                    t0 = time.perf_counter()
                    conn.execute(f"INSERT INTO {table} VALUES (1)")  # noqa: S608 -- our own table name
                    times.append(time.perf_counter() - t0)
            finally:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
        return f"{percentile(times, 50) * 1000:.2f} ms"
    except Exception as exc:  # the report still says something useful without Postgres
        return f"unavailable ({type(exc).__name__})"


def python_loop_ms() -> str:
    """A fixed piece of pure Python (a million additions), best of three: how fast this
    machine runs the interpreter, for comparing runs made on different machines."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return f"{best * 1000:.0f} ms"


def machine() -> dict[str, str]:
    import django

    memory = _memory_gib()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": f"{memory:.1f} GiB" if memory else "unknown",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "PostgreSQL": postgres_version(),
        "PostgreSQL commit (one-row insert, WAL flushed), median": commit_latency_ms(),
        "Python: a million additions, best of 3": python_loop_ms(),
        "load average at start (1, 5, 15 min)": load,  # other work on the machine skews the numbers
    }


# --- services -----------------------------------------------------------------------------

def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def manage(*args: str, env: dict[str, str], quiet: bool = True, cwd: Path | None = None) -> None:
    """Run ``manage.py`` (of the tree ``cwd``, by default this one) in a child process with
    exactly this environment."""
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=cwd or ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    if not quiet:
        print(result.stdout, end="")


def shell_json(code: str, env: dict[str, str], cwd: Path | None = None):
    """Run ``code`` in ``manage.py shell`` (a child process with exactly this environment) and
    return the JSON its last line of output holds: how a benchmark seeds and counts."""
    result = subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=cwd or ROOT, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"manage.py shell failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def production_env(database_url: str, **extra: str) -> dict[str, str]:
    """A DEBUG=0 environment with real, throwaway secrets; plain HTTP on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IEVENTS_"))}
    env.update({
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # no TLS terminator in front of a loopback benchmark
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "memory://",  # nothing is delivered during the benchmark
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DJANGO_SETTINGS_MODULE": "ievents.settings",
        # Every benchmark client is 127.0.0.1: the attendee limits (checkout/limits.py) are
        # counted on every ticket taken, as in production, but set too high to refuse one.
        "CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS": "1000000",
        "CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS": "1000000",
    })
    env.update(extra)
    return env


@contextlib.contextmanager
def throwaway_postgres(name: str, *, admin_url: str = POSTGRES_ADMIN_URL, migrate_env: dict | None = None,
                       tree: Path | None = None) -> Iterator[str]:
    """Create ``iev_bench_<name>_<pid>``, migrate it (with ``tree``'s migrations, by
    default this tree's), yield its URL, drop it afterwards."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError as exc:
        raise BenchmarkUnavailable("psycopg is not installed") from exc
    # Our process id in the name: two runs at once (two engineers, one machine) must not
    # drop each other's database half-way.
    database = f"iev_bench_{re.sub(r'[^a-z0-9_]', '_', name.lower())}_{os.getpid()}"
    url = _with_database(admin_url, database)

    def admin(statement):
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
    try:
        admin(drop)
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg.OperationalError as exc:
        raise BenchmarkUnavailable(f"PostgreSQL at {admin_url} is not reachable: {exc}") from exc
    try:
        env = migrate_env or production_env(url)
        env = {**env, "DATABASE_URL": url}
        manage("migrate", "--noinput", "-v0", env=env, cwd=tree)
        manage("createcachetable", env=env, cwd=tree)
        yield url
    finally:
        admin(drop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    import requests

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


# --- CPU accounting ----------------------------------------------------------------------
# Wall-clock rates depend on whatever else the machine is doing; the CPU time the server
# and the database spend per operation hardly does, so benchmarks report both.

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields after "pid (comm) "


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def postgres_backend_pids(database_url: str) -> list[int]:
    """Server processes connected to that database (PostgreSQL on this machine)."""
    import psycopg

    database = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            [database]).fetchall()
    return [row[0] for row in rows]


class CpuMeter:
    """CPU seconds spent by a gunicorn's workers and by one database's backends.

    ``snapshot()`` before and after a phase; ``since(before)`` gives (app, database)
    seconds. Processes that appear in between count from zero.
    """

    def __init__(self, server_pid: int, database_url: str):
        self.server_pid = server_pid
        self.database_url = database_url

    def snapshot(self) -> dict[str, dict[int, float]]:
        app = [self.server_pid, *child_pids(self.server_pid)]
        return {
            "app": {pid: process_cpu_seconds(pid) for pid in app},
            "db": {pid: process_cpu_seconds(pid) for pid in postgres_backend_pids(self.database_url)},
        }

    def since(self, before: dict[str, dict[int, float]]) -> tuple[float, float]:
        after = self.snapshot()
        spent = {
            kind: sum(max(seconds - before[kind].get(pid, 0.0), 0.0) for pid, seconds in after[kind].items())
            for kind in ("app", "db")
        }
        return spent["app"], spent["db"]


class ServerURL(str):
    """A server's base URL that also knows the server's process id."""

    pid: int


@contextlib.contextmanager
def gunicorn_server(env: dict[str, str], *, workers: int = 4, threads: int = 1, app: str = "ievents.wsgi:application",
                    port: int | None = None, log_path: Path | None = None) -> Iterator[str]:
    """Start gunicorn on ``port`` (default: a free one) with ``env``; yield its base URL; stop it."""
    port = port or free_port()
    log_path = log_path or ROOT / "var" / "bench-gunicorn.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        PYTHON, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--threads", str(threads), "--worker-class", "gthread" if threads > 1 else "sync",
        "--access-logfile", "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null", "--log-level", "warning",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_until_answering(base + "/", process=process)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"gunicorn did not start: {exc}; its log ({log_path}):\n"
                                   f"{log_path.read_text(errors='replace')[-3000:]}") from exc
            url = ServerURL(base)
            url.pid = process.pid
            yield url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
