"""Run as a script: many buyers race for few tickets through the event page, on whatever
database DATABASE_URL names. Prints one JSON line: status codes seen and tickets held.
With a third argument, every buyer types a promo code good for that many uses.

Used by tests/checkout/test_inventory.py to prove the SQLite default of `make run`
neither oversells nor answers a server error under concurrent buyers (and by
tests/promo/test_contention.py: nor uses a code more than its limit).
"""

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ievents.settings")

import django  # noqa: E402

django.setup()

from datetime import timedelta  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from ievents.models import Event, Organization, TicketType  # noqa: E402


def main(buyers: int, tickets: int, code_uses: int | None = None) -> None:
    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Race", slug=f"race-{os.getpid()}")
    event = Event.objects.create(organization=org, name="Race", starts_at=timezone.now() + timedelta(days=1))
    tt = TicketType.objects.create(event=event, name="Seat", price=1000, quantity=tickets)
    url = event.get_absolute_url()
    form = {f"qty_{tt.public_id}": 1}
    if code_uses is not None:
        from checkout.models import PromoCode

        code = PromoCode.objects.create(event=event, code="RACE", percent_off=10, max_uses=code_uses)
        form["code"] = "race"
    codes: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(buyers)

    def buy():
        client = Client()
        start.wait()
        try:
            code = client.post(url, form).status_code
        except Exception as exc:  # a crash here is exactly what this script looks for
            code = f"exception: {exc!r}"
        finally:
            connection.close()
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=buy) for _ in range(buyers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tt.refresh_from_db()
    held = sum(s.line_items.get().quantity for s in event.checkout_sessions.all())
    result = {"codes": sorted(map(str, codes)), "reserved": tt.reserved, "held": held}
    if code_uses is not None:
        code.refresh_from_db()
        result.update(code_used=code.used, orders_with_code=event.checkout_sessions.filter(promo_code=code).count())
    print(json.dumps(result))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
