"""run_demo's stop, on real processes, and seed_demo's links: the parts `make run` relies on."""

import io
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from ievents.management.commands.run_demo import Child, Relay, start, stop_all
from ievents.management.commands.seed_demo import demo_links

from .processes import alive


def started(child: Child) -> Child:
    relay = Relay(io.StringIO())
    start(child, relay)
    assert child.started.wait(60), relay.out.getvalue()
    return child


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_a_process_that_ignores_sigterm_is_killed_once_the_timeout_is_up():
    stubborn = started(Child("stubborn", python("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("up", flush=True)
        time.sleep(120)
    """), "up"))
    assert stop_all([stubborn], timeout=0.5)[1] == ["stubborn"]
    assert stubborn.process.returncode == -9


def test_the_children_of_a_process_are_stopped_with_it(tmp_path):
    # runserver's autoreloader runs the server as its child: the whole process group must go.
    pid_file = tmp_path / "grandchild.pid"
    parent = started(Child("parent", python(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print("up", flush=True)
        time.sleep(120)
    """), "up"))
    grandchild = int(Path(pid_file).read_text())
    assert alive(grandchild)
    assert stop_all([parent], timeout=5)[1] == []
    assert parent.process.returncode == -15  # SIGTERM was enough for the parent
    # Signalled, then killed with its group: gone as soon as the kernel has run it once more.
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


def test_a_process_that_stops_on_sigterm_is_not_killed():
    polite = started(Child("polite", python("""
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print("up", flush=True)
        time.sleep(120)
    """), "up"))
    assert stop_all([polite], timeout=30)[1] == []
    assert polite.process.returncode == 0


@pytest.mark.django_db
def test_seed_demo_prints_full_urls_on_the_public_base_url_and_the_login(settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8123"
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Home:        http://127.0.0.1:8123/"
    assert lines[1].startswith("Demo event:  http://127.0.0.1:8123/e/ev_") and lines[1].endswith("/")
    assert lines[2:] == ["Admin:       http://127.0.0.1:8123/admin/", "Login:       user organizer, password demo-organizer"]

    quiet = io.StringIO()
    call_command("seed_demo", stdout=quiet, verbosity=0)
    assert quiet.getvalue() == ""


@pytest.mark.django_db
def test_a_password_changed_since_seeding_is_not_printed():
    call_command("seed_demo", stdout=io.StringIO())
    organizer = get_user_model().objects.get(username="organizer")
    organizer.set_password("my-own-secret-9f2")
    organizer.save()
    login = demo_links("http://127.0.0.1:8000")[-1]
    assert login == "Login:       user organizer, password (changed since the demo was seeded)"


@pytest.mark.django_db
def test_without_the_demo_data_the_links_say_how_to_make_it():
    assert demo_links("http://127.0.0.1:8000") == [
        "Home:        http://127.0.0.1:8000/",
        "Demo event:  (none: run `python manage.py seed_demo`)",
        "Admin:       http://127.0.0.1:8000/admin/",
        "Login:       (none: run `python manage.py seed_demo`)",
    ]


def test_a_process_that_dies_is_named_with_its_last_output():
    """Issue 21: the demo stopped when its worker died, without saying which or why."""
    from ievents.management.commands.run_demo import exit_report

    dying = started(Child("worker", python("""
        import sys
        print("up", flush=True)
        print("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)", flush=True)
        sys.exit(3)
    """), "up"))
    dying.process.wait(30)
    deadline = time.monotonic() + 10
    while len(dying.last_lines) < 2 and time.monotonic() < deadline:  # the relay thread catches up
        time.sleep(0.05)
    report = exit_report(dying)
    assert "the worker process exited with code 3" in report
    assert "JSONDecodeError: Expecting value" in report
