"""A code good for 10 uses, typed by 100 attendees at once, is used exactly 10 times: on
PostgreSQL (real threads and row locks) and on the SQLite default of ``make run``."""

import json
import os
import subprocess
import sys
import threading

import pytest
from django.db import connection

from checkout import promo, services
from checkout.models import CheckoutSession
from tests.conftest import make_event

from .conftest import make_code


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_hundred_attendees_with_a_code_good_for_ten_uses_make_exactly_ten_orders_on_postgres(organization):
    event = make_event(organization, quantity=1000, questions=False)
    tt = event.ticket_types.get()
    code = make_code(event, "TENONLY", percent_off=20, max_uses=10)
    results, lock = [], threading.Lock()
    barrier, pool = threading.Barrier(100), threading.BoundedSemaphore(40)

    def buy():
        barrier.wait()
        with pool:
            try:
                services.create_session(event, [services.Item(tt, 1)], promo_code=promo.check_code(event, "tenonly"))
                outcome = "used"
            except promo.CodeRefused as exc:
                outcome = exc.reason
            except Exception as exc:
                outcome = repr(exc)
            finally:
                connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=buy) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("used") == 10 and results.count("used_up") == 90, sorted(set(results))
    code.refresh_from_db()
    tt.refresh_from_db()
    assert code.used == 10 == promo.uses_from_orders(code).held
    assert CheckoutSession.objects.filter(event=event, promo_code=code).count() == 10 == tt.reserved


def test_the_sqlite_default_uses_a_code_exactly_its_limit_under_concurrent_attendees(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}", "IEVENTS_VAR_DIR": str(tmp_path)}
    script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "checkout", "race.py")
    out = subprocess.run([sys.executable, script, "100", "200", "10"], env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code_used"] == 10 and result["orders_with_code"] == 10
    # 10 of the 100 go on to their checkout; the rest see the page again with the code refused, nobody a 500.
    assert result["codes"].count("302") == 10 and result["codes"].count("200") == 90
