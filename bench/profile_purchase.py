"""Python function calls per request of one sandbox purchase: a deterministic CPU figure.

``bench_checkout`` measures app CPU per checkout through gunicorn, which moves with
whatever else runs on the machine. This counts what the app does instead: one purchase
(the benchmark's ten requests) through Django's test client, with production settings
(``DEBUG=0``, WhiteNoise's manifest, CSRF enforced, the HTTPS the benchmark's client
pretends to come over), each request under ``cProfile``, reporting the Python function
calls each made. The same code on the same data makes the same calls, so a change's
effect shows on a loaded machine too.

    DATABASE_URL=postgres://…/scratch .venv/bin/python -m bench.profile_purchase [--top N] [--purchases N]

The database is migrated and seeded (one organization with its event) if it has no such
event yet; static files must have been collected (``manage.py collectstatic``) under the
same settings. ``--top N`` prints each request's N hottest functions by cumulative time,
``--step NAME`` only that request's.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import os
import pstats
import re
import sys
import time
from urllib.parse import urlencode

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
HANDLER = None  # one WSGI handler for every client, as a gunicorn worker has: middleware loaded once


def client(**kwargs):
    global HANDLER
    from django.test.client import Client, ClientHandler

    made = Client(**kwargs)
    HANDLER = HANDLER or ClientHandler(enforce_csrf_checks=True)
    made.handler = HANDLER
    return made


def configure() -> None:
    if "DATABASE_URL" not in os.environ:
        sys.exit("DATABASE_URL must name a scratch database (it is migrated and seeded)")
    os.environ.update({
        "DEBUG": "0",
        "SECRET_KEY": "profile-purchase-" + "k" * 60,  # fixed: the same signatures on every run
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(b"p" * 32).decode(),
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DJANGO_SETTINGS_MODULE": "ievents.settings",
        "PUBLIC_BASE_URL": "https://testserver",
        "CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS": "1000000",
        "CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS": "1000000",
    })
    import django

    django.setup()


def seed() -> dict:
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", "--noinput", verbosity=0)
    call_command("createcachetable", verbosity=0)
    from ievents.models import Event, Organization, Question, TicketType
    from payments.models import IntegrationSettings

    org, created = Organization.objects.get_or_create(slug="profile", defaults={"name": "Profile Events"})
    if created:
        IntegrationSettings.objects.create(organization=org, provider="sandbox")
        event = Event.objects.create(organization=org, name="Profile Summit", currency="EUR",
                                     starts_at=timezone.now() + timedelta(days=3650), venue="Loopback Hall")
        TicketType.objects.create(event=event, name="General", price=2500, quantity=1_000_000, max_per_order=10)
        Question.objects.create(event=event, text="Company", kind="text", position=0)
        Question.objects.create(event=event, text="T-shirt size", kind="choice", choices="S\nM\nL",
                                required=True, position=1)
    event = Event.objects.get(organization=org)
    size = event.questions.get(kind="choice")
    return {"event_url": event.get_absolute_url(), "qty_field": f"qty_{event.ticket_types.get().public_id}",
            "size_field": f"q_{size.pk}"}


class Purchase:
    """One attendee's purchase, each request optionally profiled."""

    def __init__(self, seed: dict, profile: bool):
        self.seed = seed
        self.profile = profile
        self.client = client(headers={"Origin": "https://testserver"})
        self.stats: list[tuple[str, pstats.Stats | None]] = []

    def step(self, name, method, path, data=None, page=None):
        kwargs = {"secure": True}
        if data is not None:
            token = CSRF.search(page.content.decode())
            assert token, f"no CSRF token before {name}"
            # Form-encoded, as a browser (and bench_checkout's client) posts these forms; the
            # test client's default would be multipart.
            kwargs["data"] = urlencode({"csrfmiddlewaretoken": token.group(1), **data})
            kwargs["content_type"] = "application/x-www-form-urlencoded"
        call = getattr(self.client, method)
        profiler = cProfile.Profile() if self.profile else None
        if profiler:
            profiler.enable()
        response = call(path, **kwargs)
        if profiler:
            profiler.disable()
        assert response.status_code in (200, 302), (name, response.status_code)
        self.stats.append((name, pstats.Stats(profiler) if profiler else None))
        return response

    def run(self):
        s = self.seed
        event = self.step("GET event page", "get", s["event_url"])
        form = self.step("POST tickets", "post", s["event_url"], {s["qty_field"]: "1"}, event)["Location"]
        page = self.step("GET attendee form", "get", form)
        review = self.step("POST details", "post", form, {"name": "Q", "email": "q@example.com",
                                                           s["size_field"]: "M"}, page)["Location"]
        page = self.step("GET review", "get", review)
        sandbox = self.step("POST Pay", "post", review, {"provider": "sandbox"}, page)["Location"]
        page = self.step("GET sandbox page", "get", sandbox)
        back = self.step("POST Simulate success", "post", sandbox, {"outcome": "success"}, page)["Location"]
        status = self.step("GET return page", "get", back)["Location"]
        page = self.step("GET status page", "get", status)
        assert b"ticket-code" in page.content
        return self


def home(profile: bool) -> pstats.Stats | None:
    browser = client()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    response = browser.get("/", secure=True)
    if profiler:
        profiler.disable()
    assert response.status_code == 200
    return pstats.Stats(profiler) if profiler else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=0, help="print each request's N hottest functions")
    parser.add_argument("--step", default="", help="only this request's listing (e.g. 'GET return page')")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key for --top")
    parser.add_argument("--warmup", type=int, default=2, help="purchases before the measured one")
    parser.add_argument("--cpu", type=int, default=0,
                        help="also time N purchases unprofiled: this process's CPU ms per purchase (noisier)")
    args = parser.parse_args()
    configure()
    data = seed()
    for _ in range(args.warmup):  # imports, compiled templates, URL resolvers, prepared statements
        home(False)
        Purchase(data, profile=False).run()
    if args.cpu:
        t0 = time.process_time()
        for _ in range(args.cpu):
            home(False)
        floor_ms = (time.process_time() - t0) * 1000 / args.cpu
        t0 = time.process_time()
        for _ in range(args.cpu):
            Purchase(data, profile=False).run()
        purchase_ms = (time.process_time() - t0) * 1000 / args.cpu
        print(f"CPU: GET / {floor_ms:.2f} ms, purchase {purchase_ms:.1f} ms ({purchase_ms / floor_ms:.1f} × GET /)")
    floor = home(True)
    purchase = Purchase(data, profile=True).run()
    total = 0
    print(f"{'request':<24} {'function calls':>14}")
    print(f"{'GET / (floor)':<24} {floor.total_calls:>14,}")
    for name, stats in purchase.stats:
        total += stats.total_calls
        print(f"{name:<24} {stats.total_calls:>14,}")
    print(f"{'purchase':<24} {total:>14,}   ({total / floor.total_calls:.1f} × GET /)")
    if args.top:
        for name, stats in purchase.stats:
            if args.step and name != args.step:
                continue
            print(f"\n===== {name}")
            stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
