"""The README's "Production without Docker", followed to the letter, ends in a sale.

A copy of the working tree in a temporary directory runs the README's own commands, read
from its code blocks: the release steps in order, then gunicorn, a Celery worker and
beat, against a fresh PostgreSQL database and the test run's Redis, with ``DEBUG=0``.
Then Chromium buys a ticket there through the sandbox.

Two things differ from a real host, and only these: the dependencies are not installed
again (the copy's ``.venv`` is this test run's virtualenv), and the site is served over
plain http on 127.0.0.1, so ``SECURE_SSL_REDIRECT=0`` and ``PUBLIC_BASE_URL`` is
``http://…`` (the README says so; check --deploy names exactly those two and nothing
else). ``seed_demo`` adds the event to buy from, as docs/docker.md's optional demo data.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings
from playwright.sync_api import expect

from tests.waiting import wait_for

from .processes import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "var", "db.sqlite3*", "staticfiles", "test-artifacts",
                                    "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules")
STEP_TIMEOUT = 180
STOP_BOUND = 35  # gunicorn's --graceful-timeout is 30 s; all three stop well within it here
# What check --deploy must say about a plain-http trial on one machine, and nothing else.
EXPECTED_OVER_HTTP = ["(ievents.E004) PUBLIC_BASE_URL is 'http://", "(security.W008)"]  # errors, then warnings


def readme_blocks() -> list[str]:
    """The shell blocks of the README's "Production without Docker" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Production without Docker\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def commands(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture
def fresh_database():
    """A new, empty PostgreSQL database beside the test run's: ``<test database>_prod``."""
    params = settings.DATABASES["default"]
    name = f"{params['NAME']}_prod"
    admin = {"host": params["HOST"] or "127.0.0.1", "port": params["PORT"] or 5432, "user": params["USER"],
             "password": params["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    # CREATE/DROP DATABASE: no ORM call says it. The name is ours, quoted as an identifier.
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    password = f":{params['PASSWORD']}" if params["PASSWORD"] else ""
    yield f"postgres://{params['USER']}{password}@{admin['host']}:{admin['port']}/{name}"
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Site:
    """The copy of the project and the processes the README starts in it."""

    def __init__(self, app: Path, env: dict[str, str]):
        self.app = app
        self.env = env
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []

    def run(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", "-c", command], cwd=self.app, env=self.env, capture_output=True, text=True,
                              timeout=STEP_TIMEOUT)

    def start(self, command: str) -> None:
        log = self.app / f"process-{len(self.processes)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=self.app, env=self.env,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.processes.append((command, process, log))

    def logs(self) -> str:
        return "\n".join(f"--- {command}\n{log.read_text(errors='replace')[-3000:]}"
                         for command, _, log in self.processes)

    def wait_while_running(self, condition, what: str, timeout: float = 90) -> None:
        def ready():
            for _, process, _ in self.processes:
                if process.poll() is not None:
                    raise AssertionError(f"a process exited while waiting for {what}:\n{self.logs()}")
            return condition()

        wait_for(ready, timeout, what, interval=0.2, explain=self.logs)

    def log_of(self, index: int) -> str:
        return self.processes[index][2].read_text(errors="replace")

    def stop(self) -> None:
        for _, process, _ in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        began = time.monotonic()
        deadline = began + STOP_BOUND
        for command, process, _ in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
                print(f"{command.split()[0:3]} stopped after {time.monotonic() - began:.1f} s")
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def site(tmp_path, fresh_database):
    app = tmp_path / "app"
    shutil.copytree(ROOT, app, ignore=NOT_COPIED, symlinks=True)
    (app / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")}
    env.update({
        "DEBUG": "0",
        "SECRET_KEY": "operator-" + Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": fresh_database,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "IEVENTS_VAR_DIR": str(tmp_path / "var"),
        # Only for plain http on one machine (README): no redirect to https.
        "SECURE_SSL_REDIRECT": "0",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PYTHONUNBUFFERED": "1",
    })
    running = Site(app, env)
    yield running
    running.stop()


def test_the_readme_production_commands_serve_a_sandbox_purchase(site, browser):
    settings_block, dependencies, release, processes = readme_blocks()
    # Every setting the README says must be set is set here (to this machine's values).
    required = re.findall(r"^export (\w+)=", settings_block, re.M)
    assert {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "CELERY_BROKER_URL",
            "PUBLIC_BASE_URL", "CSRF_TRUSTED_ORIGINS"} <= set(required)
    assert set(required) <= set(site.env)
    # The dependencies are this run's virtualenv already (the copy's .venv points at it).
    assert commands(dependencies) == ["python3.11 -m venv .venv", ".venv/bin/pip install -r requirements.txt"]

    steps = commands(release)
    assert [step.split("manage.py ")[1].split()[0] for step in steps] == [
        "migrate", "createcachetable", "compilemessages", "collectstatic", "check"]
    for step in steps:
        result = site.run(step)
        if "check --deploy" in step:
            problems = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("?: (")]
            assert result.returncode != 0 and len(problems) == len(EXPECTED_OVER_HTTP), result.stdout
            assert all(words in line for line, words in zip(problems, EXPECTED_OVER_HTTP, strict=True)), result.stdout
        else:
            assert result.returncode == 0, f"{step}\n{result.stdout}\n{result.stderr}"
    assert (site.app / "staticfiles" / "staticfiles.json").is_file()
    seeded = site.run(".venv/bin/python manage.py seed_demo")
    assert seeded.returncode == 0, seeded.stderr
    event_url = re.search(r"Demo event:\s+(\S+)", seeded.stdout).group(1)
    base = site.env["PUBLIC_BASE_URL"]
    assert event_url.startswith(base + "/e/ev_")

    started = commands(processes)
    assert [command.split()[0] for command in started] == [".venv/bin/gunicorn", ".venv/bin/celery", ".venv/bin/celery"]
    assert sum(" beat " in command for command in started) == 1
    for command in started:
        site.start(command)
    site.wait_while_running(lambda: answers(base + "/"), "gunicorn to answer")
    site.wait_while_running(lambda: " ready." in site.log_of(1), "the Celery worker")
    site.wait_while_running(lambda: "beat: Starting" in site.log_of(2), "Celery beat")

    # DEBUG=0: static files come from WhiteNoise under their hashed, collected names.
    page = requests.get(event_url, timeout=10)
    assert page.status_code == 200
    stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', page.text)
    assert stylesheet, "no hashed stylesheet on the event page"
    assert requests.get(base + stylesheet.group(1), timeout=10).status_code == 200

    buy_a_ticket_in_the_browser(browser, event_url)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def buy_a_ticket_in_the_browser(browser, event_url: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto(event_url)
        page.get_by_label("Quantity of General admission").fill("1")
        page.get_by_role("button", name="Get tickets").click()
        expect(page.get_by_role("heading", name="Your details")).to_be_visible()
        page.get_by_label("Name", exact=True).fill("Ana Silva")
        page.get_by_label("Email", exact=True).fill("ana@example.com")
        page.get_by_label("T-shirt size", exact=True).select_option("M")
        page.get_by_label("I accept the code of conduct").check()
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
        page.get_by_label("Sandbox").check()
        page.get_by_role("button", name="Pay").click()
        expect(page.get_by_role("heading", name="Sandbox payment")).to_be_visible()
        page.get_by_role("button", name="Simulate success").click()
        expect(page.get_by_role("heading", name="You're going!")).to_be_visible()
        expect(page.locator(".ticket-code")).to_have_count(1)
        assert urlsplit(page.url).path.endswith("/status/")
    finally:
        context.close()
