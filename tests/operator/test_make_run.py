"""`make run`, as a newcomer uses it: it says where to click, and it stops whole, at once.

Each case starts `make run` in a process group of its own (as a terminal would), on a free
port, a temporary SQLite database and a temporary var directory, waits until the demo
event's URL it printed answers 200, then sends SIGTERM, or SIGINT as Ctrl-C does, to the
group, and checks that make, the supervisor, runserver (and its autoreloaded child), the
Celery worker and beat are all gone within STOP_BOUND seconds.

The ten-in-a-row proof: ``MAKE_RUN_ROUNDS=5 pytest tests/operator/test_make_run.py``
(five rounds of both signals); the suite runs one round to keep CI short.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.waiting import wait_for

from .processes import alive, command_line, descendants, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
STOP_BOUND = 10.0  # seconds from the signal until no process of the demo is left
START_BOUND = 180.0  # a fresh checkout on a busy 2-core machine: migrations, then four processes
ROUNDS = int(os.environ.get("MAKE_RUN_ROUNDS", "1"))
DEMO_EVENT = re.compile(r"Demo event:\s+(http://127\.0\.0\.1:(\d+)/e/ev_[A-Za-z0-9]+/)")
LAST_LINE = re.compile(r"Ctrl-C stops everything\.$")
# What the test's own environment may say about services; `make run` must use its defaults.
PROJECT_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "PUBLIC_BASE_URL", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE",
               "IEVENTS_VAR_DIR", "PORT")


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory) -> Path:
    """A migrated SQLite file that each case copies, so `make run`'s migrate has nothing to do."""
    # The README's two commands are make targets: without make there is nothing to test, and
    # that must fail, not skip.
    assert shutil.which("make"), "make is not installed"
    path = tmp_path_factory.mktemp("make-run-template") / "db.sqlite3"
    env = demo_env(path, tmp_path_factory.mktemp("make-run-var"))
    for args in (["migrate", "--noinput", "-v0"], ["createcachetable"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=300,
                       capture_output=True)
    return path


def demo_env(database: Path, var_dir: Path, port: int = 8000) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in PROJECT_ENV}
    env.update({"DATABASE_URL": f"sqlite:///{database}", "IEVENTS_VAR_DIR": str(var_dir), "PORT": str(port)})
    return env


class MakeRun:
    """`make run` in its own process group, its output collected as it comes."""

    def __init__(self, env: dict[str, str]):
        # -o: the venv's dependency stamp counts as up to date, so make installs nothing.
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "-o", f"{VENV}/.deps", f"VENV={VENV}", "run"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace", start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: re.Pattern, timeout: float) -> re.Match:
        """The first printed line matching ``pattern``, waiting for it; fail if make exits first."""
        def printed():
            match = next(filter(None, map(pattern.search, list(self.lines))), None)
            if match is None and self.process.poll() is not None:
                raise AssertionError(f"`make run` exited without printing {pattern.pattern!r}:\n{self.output()}")
            return match

        return wait_for(printed, timeout, f"`make run` to print {pattern.pattern!r}", interval=0.1, explain=self.output)

    def stop(self, signum: int) -> float:
        """Send ``signum`` to the group; the seconds until make and every process it started
        are gone, or fail (with what is left and the output) after STOP_BOUND."""
        processes = descendants(self.process.pid)
        began = time.monotonic()
        os.killpg(self.process.pid, signum)
        deadline = began + STOP_BOUND
        while time.monotonic() < deadline and (self.process.poll() is None or any(alive(pid) for pid in processes)):
            time.sleep(0.05)
        took = time.monotonic() - began
        left = {pid: command_line(pid) for pid in processes if alive(pid)}
        if self.process.poll() is None or left:
            self.kill_everything(processes)
            raise AssertionError(f"still running {STOP_BOUND} s after {signal.Signals(signum).name}: "
                                 f"make={self.process.returncode}, {left}\n{self.output()}")
        return took

    def kill_everything(self, pids: set[int]) -> None:
        """Cleanup for a failed case: nothing of it may outlive the test."""
        for pid in pids | {self.process.pid}:
            if alive(pid):
                try:
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.process.wait(10)


def assert_the_closing_lines_come_last(lines: list[str], port: int) -> None:
    """Full URLs and the login, together, after the banners and the server's start messages."""
    start = max(i for i, line in enumerate(lines) if line.startswith("The demo is running"))
    before, block = lines[:start], lines[start:]
    base = f"http://127.0.0.1:{port}"
    assert block[1] == f"  Home:        {base}/"
    assert re.fullmatch(rf"  Demo event:  {re.escape(base)}/e/ev_[A-Za-z0-9]+/", block[2])
    assert block[3:5] == [f"  Admin:       {base}/admin/", "  Login:       user organizer, password demo-organizer"]
    assert block[5].endswith("Ctrl-C stops everything.")
    assert not [line for line in block[7:] if line.strip()], "\n".join(block)
    started = ("[queues]", "maxinterval", "Quit the server")  # worker, beat, runserver
    assert [marker for marker in started if any(marker in line for line in before)] == list(started)
    assert not any("superuser privileges" in line for line in lines)


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_make_run_says_where_to_click_and_stops_whole_within_seconds(migrated_database, tmp_path, signum, round_):
    database = tmp_path / "db.sqlite3"
    shutil.copy(migrated_database, database)
    port = free_port()
    demo = MakeRun(demo_env(database, tmp_path / "var", port))
    try:
        event_url = demo.wait_for_line(DEMO_EVENT, START_BOUND).group(1)
        demo.wait_for_line(LAST_LINE, 10)  # the closing block is whole
        assert_the_closing_lines_come_last(list(demo.lines), port)
        assert requests.get(event_url, timeout=10).status_code == 200
        names = " | ".join(command_line(pid) for pid in descendants(demo.process.pid))
        for part in ("run_demo", "runserver", "celery -A ievents worker", "celery -A ievents beat"):
            assert part in names, f"{part!r} is not running: {names}"

        took = demo.stop(signum)
        print(f"\n{signum.name}: everything stopped in {took:.2f} s")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        demo.kill_everything(descendants(demo.process.pid))
        demo.reader.join(5)
