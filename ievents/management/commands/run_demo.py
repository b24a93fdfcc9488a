"""Serve the demo: Django's development server, one Celery worker and one beat, as one unit.

`make run` calls this after `seed_demo`. Each process runs in a process group of its own,
so a Ctrl-C or a SIGTERM reaches only this command, which stops all three together:
SIGTERM to each group, then SIGKILL to whatever still runs after ``--stop-timeout``
seconds. A stop is bounded whatever state a process is in. (Beat runs as its own process:
embedded in the worker with ``-B``, it once held the worker at "beat: Shutting down…" for
a minute.)

Their output passes through here. Once the server answers and the worker and beat have
printed their banners, the places to click are printed last, together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from .seed_demo import demo_links

# Celery warns when its worker runs as root. Celery itself refuses to start as root only
# when it accepts pickle, which this project never does (JSON only); the warning is kept
# out of the demo's terminal, not out of production, where the README says to run the
# worker as its own user.
ROOT_WARNING = "ignore:You're running the worker with superuser privileges"
BANNERS_TIMEOUT = 120.0  # seconds to wait for the processes to say they are up
QUIET_BEFORE_ANNOUNCING = 0.5  # seconds without output from any process: the banners are done
LAST_LINES_KEPT = 15  # of each process's output, to say why it exited


@dataclass
class Child:
    """One process of the demo and what in its output says it has started."""

    name: str
    argv: list[str]
    started_when: str  # a piece of a line the process prints once it is up
    process: subprocess.Popen | None = None
    started: threading.Event = field(default_factory=threading.Event)
    last_lines: deque = field(default_factory=lambda: deque(maxlen=LAST_LINES_KEPT))


class StopRequest:
    """Set by the signal handlers. A plain flag, not a threading.Event: Event.set() takes a
    lock that the main thread may be holding inside Event.wait() when the signal arrives,
    and the handler would then wait on its own thread forever."""

    def __init__(self):
        self.requested = False

    def __call__(self, *_):
        self.requested = True

    def __bool__(self):
        return self.requested


class Relay:
    """Copies the children's output to ours, line by line, and notices when each is up."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.last_output = time.monotonic()

    def follow(self, child: Child) -> None:
        thread = threading.Thread(target=self._copy, args=(child,), name=f"relay-{child.name}", daemon=True)
        thread.start()

    def _copy(self, child: Child) -> None:
        for line in child.process.stdout:
            self.write(line)
            child.last_lines.append(line.rstrip("\n"))
            if child.started_when in line:
                child.started.set()

    def write(self, text: str) -> None:
        with self.lock:
            self.out.write(text)
            self.out.flush()
            self.last_output = time.monotonic()


class Command(BaseCommand):
    help = "Serve the demo (runserver, a Celery worker and beat) until Ctrl-C or SIGTERM; `make run` calls it."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--stop-timeout", type=float, default=5.0,
                            help="seconds the processes get to stop before they are killed (default 5)")
        parser.add_argument("--celery-loglevel", default="WARNING",
                            help="log level of the worker and beat (default WARNING: the periodic sweeps stay quiet)")

    def handle(self, *, port, stop_timeout, celery_loglevel, **options):
        base_url = f"http://127.0.0.1:{port}"
        stop = StopRequest()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)
        relay = Relay(sys.stdout)
        children = demo_processes(port, celery_loglevel)
        try:
            for child in children:
                start(child, relay)
            if wait_until_started(children, base_url, relay, stop):
                relay.write(closing_lines(base_url))
            ended = wait_for_stop_or_an_exit(children, stop)
        finally:
            stopped_in, killed = stop_all(children, stop_timeout)
        late = f" ({', '.join(killed)} killed after {stop_timeout:g} s)" if killed else ""
        relay.write(f"Stopped in {stopped_in:.1f} s{late}.\n")
        if ended is not None:
            raise CommandError(exit_report(ended))


def exit_report(child: Child) -> str:
    """Which process ended the demo, how, and its last words (the why: a traceback, say)."""
    code = child.process.returncode
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    said = "\n".join(f"  | {line}" for line in child.last_lines) or "  (it printed nothing)"
    return f"The demo was stopped: the {child.name} process {how}. Its last output:\n{said}"


def demo_processes(port: int, celery_loglevel: str) -> list[Child]:
    python = sys.executable
    celery = [python, "-W", ROOT_WARNING, "-m", "celery", "-A", "ievents"]
    return [
        # The worker: threads, as in docker-compose.yml, so it is one process. No heartbeat,
        # mingle or gossip: one worker has no peers, and they only delay its start and stop.
        Child("worker", [*celery, "worker", "--pool", "threads", "--concurrency", "4", "--loglevel", celery_loglevel,
                         "--without-heartbeat", "--without-mingle", "--without-gossip"], "[queues]"),
        Child("beat", [*celery, "beat", "--loglevel", celery_loglevel,
                       "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")], "maxinterval"),
        Child("runserver", [python, str(settings.BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}"],
              "Quit the server"),
    ]


def start(child: Child, relay: Relay) -> None:
    child.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        child.argv, cwd=settings.BASE_DIR, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        process_group=0,
    )
    relay.follow(child)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http://127.0.0.1 URL)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_started(children: list[Child], base_url: str, relay: Relay, stop: StopRequest) -> bool:
    """True once the home page answers, every process has said it is up and the output has
    gone quiet; or, should a banner be worded otherwise one day, once the page answers after
    BANNERS_TIMEOUT. False if a process exited or a stop was asked for first."""
    banners_deadline = time.monotonic() + BANNERS_TIMEOUT
    web_answers = False
    while not stop:
        if any(child.process.poll() is not None for child in children):
            return False
        all_up = all(child.started.is_set() for child in children)
        if all_up or time.monotonic() > banners_deadline:
            web_answers = web_answers or answers(base_url + "/")
            if web_answers and (not all_up or time.monotonic() - relay.last_output >= QUIET_BEFORE_ANNOUNCING):
                return True
        time.sleep(0.1)
    return False


def closing_lines(base_url: str) -> str:
    rule = "-" * 72
    lines = ["", rule, "The demo is running. Open:", *(f"  {line}" for line in demo_links(base_url)),
             "Buy with the Sandbox provider. Ctrl-C stops everything.", rule]
    return "\n".join(lines) + "\n"


def wait_for_stop_or_an_exit(children: list[Child], stop: StopRequest) -> Child | None:
    """Wait for Ctrl-C/SIGTERM (None) or for a process to exit on its own (that process)."""
    while not stop:
        for child in children:
            if child.process.poll() is not None:
                return child
        time.sleep(0.1)
    return None


def stop_all(children: list[Child], timeout: float) -> tuple[float, list[str]]:
    """SIGTERM to every process group, SIGKILL to what is left after ``timeout``; returns the
    seconds it took and the names of the processes that had to be killed. Groups, not
    processes: runserver's autoreloader runs the server as its child, and a group signal
    reaches both."""
    began = time.monotonic()
    running = [child for child in children if child.process is not None]
    signal_groups(running, signal.SIGTERM)
    deadline = began + timeout
    for child in running:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    killed = [child.name for child in running if child.process.poll() is None]
    signal_groups(running, signal.SIGKILL)  # what did not stop in time, and any stray child of the leaders
    for child in running:
        child.process.wait()
    return time.monotonic() - began, killed


def signal_groups(children: list[Child], signum: int) -> None:
    for child in children:
        try:
            os.killpg(child.process.pid, signum)
        except ProcessLookupError:  # the whole group has exited
            pass
