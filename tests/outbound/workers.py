"""Real Celery worker processes for tests, on the real broker and the pytest database.

``CeleryWorker`` starts ``celery -A ievents worker`` as a subprocess whose
``DATABASE_URL`` points at the test database (``test_…``) of this pytest run, so the
worker sees the rows a ``transaction=True`` test committed. It can embed beat (the
periodic sweep) and be SIGKILLed like a crashed machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SWEEP_TASK = "webhooks.tasks.sweep_deliveries"
# Celery's own log lines (at INFO) for a task received and a task that ended, however.
TASK_RECEIVED = re.compile(r"Task (\S+)\[([0-9a-f-]+)\] received")
TASK_ENDED = re.compile(r"Task (\S+)\[([0-9a-f-]+)\] (?:succeeded in \S+: (.*)|raised|retry|failed)")


def test_database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def purge_broker() -> None:
    """Drop every message of the default queue (leftovers, or a deliberately lost message)."""
    from ievents.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


class CeleryWorker:
    def __init__(self, *, name: str, beat: bool = False, concurrency: int = 4, env: dict[str, str] | None = None):
        self.name = name
        self.beat = beat
        self.concurrency = concurrency
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix=f"celery-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        self._beat_dir = tempfile.mkdtemp(prefix="celerybeat-")

    def start(self, ready_timeout: float = 30) -> CeleryWorker:
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            "DEBUG": "1",
            "LOG_LEVEL": "INFO",
            **self.env,
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        cmd = [
            sys.executable, "-m", "celery", "-A", "ievents", "worker", "--pool", "threads",
            "--concurrency", str(self.concurrency), "--hostname", f"{self.name}@%h", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        if self.beat:
            cmd += ["--beat", "--schedule", os.path.join(self._beat_dir, "schedule")]
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.output()}")
            return " ready." in self.output()

        wait_for(ready, ready_timeout, f"worker {self.name} to be ready", explain=self.output)
        return self

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def idle(self) -> bool:
        """Every task this worker received has ended (a countdown it holds has run, a POST
        it was making has its answer)."""
        log = self.output()
        received = {task_id for _, task_id in TASK_RECEIVED.findall(log)}
        ended = {task_id for _, task_id, _ in TASK_ENDED.findall(log)}
        return received <= ended

    def sweep_results(self) -> list[str]:
        """What each sweep this worker ran returned (how many deliveries it enqueued), in order."""
        return [result.strip() for name, _, result in TASK_ENDED.findall(self.output()) if name == SWEEP_TASK]

    def kill(self) -> None:
        """SIGKILL, as a crash would: no task finishes, no message is acknowledged."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def __enter__(self) -> CeleryWorker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until_nothing_more_can_be_sent(workers, *, quiet_sweeps: int = 2, queued=None, timeout: float = 30) -> None:
    """Wait for the events after which no further request can reach a receiver, so that
    a count taken next is final: each worker is idle, and each worker running the periodic
    sweep has since finished ``quiet_sweeps`` sweeps in a row that found nothing overdue
    (a delivery wrongly left due would be enqueued by them, and so be counted);
    ``queued()``, when given, says the broker holds no message. ``timeout`` only bounds
    the wait: it is not a time that must pass."""
    sweeping = [w for w in workers if w.beat]
    already = {w: len(w.sweep_results()) for w in sweeping}

    def quiet():
        for w in sweeping:
            results = w.sweep_results()[already[w]:]
            if len(results) < quiet_sweeps or set(results[-quiet_sweeps:]) != {"0"}:
                return False
        return (queued is None or queued() == 0) and all(w.idle() for w in workers)

    wait_for(quiet, timeout, f"{quiet_sweeps} sweeps that found nothing to send and idle workers")
