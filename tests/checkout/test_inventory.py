"""Inventory holds: reserve, release, expire — and no oversell under concurrent buyers."""

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from checkout import services
from checkout.inventory import SoldOut
from checkout.models import CheckoutSession, Status
from ievents.models import TicketType
from tests.conftest import make_event


@pytest.mark.django_db
def test_a_hold_counts_against_availability_and_sold_out_holds_nothing(organization):
    event = make_event(organization, quantity=3)
    tt = event.ticket_types.get()
    services.create_session(event, [services.Item(tt, 2)])
    with pytest.raises(SoldOut):
        services.create_session(event, [services.Item(tt, 2)])
    tt.refresh_from_db()
    assert tt.reserved == 2 and CheckoutSession.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", [0, 11, -1])
def test_bad_quantities_are_refused(event, ticket_type, quantity):
    with pytest.raises(services.InvalidOrder):
        services.create_session(event, [services.Item(ticket_type, quantity)])
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0


@pytest.mark.django_db
def test_a_ticket_type_of_another_event_is_refused(organization, event):
    other = make_event(organization, name="Other").ticket_types.get()
    with pytest.raises(services.InvalidOrder):
        services.create_session(event, [services.Item(other, 1)])


@pytest.mark.django_db
def test_a_price_changed_while_choosing_is_refused_and_holds_nothing(event, ticket_type):
    """The hold's conditional UPDATE carries the price the attendee was shown (issue 26: no
    read of the types it held): a new price holds nothing and opens nothing."""
    TicketType.objects.filter(pk=ticket_type.pk).update(price=ticket_type.price + 500)  # the page showed the old one
    with pytest.raises(services.InvalidOrder) as refused:
        services.create_session(event, [services.Item(ticket_type, 1)])
    assert "price changed" in refused.value.message
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0 and not CheckoutSession.objects.exists()


@pytest.mark.django_db
def test_a_sold_out_type_whose_price_is_unchanged_is_sold_out_not_repriced(organization):
    event = make_event(organization, quantity=1)
    tt = event.ticket_types.get()
    services.create_session(event, [services.Item(tt, 1)])
    with pytest.raises(SoldOut):
        services.create_session(event, [services.Item(tt, 1)])


@pytest.mark.django_db
def test_tickets_outside_their_sales_window_are_refused(event, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(sales_end=timezone.now() - timedelta(minutes=1))
    ticket_type.refresh_from_db()
    with pytest.raises(services.InvalidOrder):
        services.create_session(event, [services.Item(ticket_type, 1)])


@pytest.mark.django_db
def test_expired_holds_are_released_by_the_timer_and_announced(open_session, ticket_type):
    from webhooks.models import OutboxEvent

    CheckoutSession.objects.filter(pk=open_session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.release_expired_holds() == 1
    open_session.refresh_from_db()
    ticket_type.refresh_from_db()
    assert open_session.status == Status.EXPIRED and open_session.holds_released
    assert ticket_type.reserved == 0
    assert OutboxEvent.objects.filter(session=open_session, type="checkout.session.expired").count() == 1
    assert services.release_expired_holds() == 0  # a second sweep changes nothing
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0


@pytest.mark.django_db
def test_holds_not_yet_expired_are_kept(open_session, ticket_type):
    assert services.release_expired_holds() == 0
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 2


@pytest.mark.django_db
def test_a_payment_after_expiry_re_reserves_and_completes_when_tickets_remain(open_session, ticket_type):
    services.expire_session(open_session.pk)
    services.record_payment_succeeded(open_session.pk, amount=open_session.amount_total, currency="EUR",
                                      source="provider_webhook")
    open_session.refresh_from_db()
    ticket_type.refresh_from_db()
    assert open_session.status == Status.COMPLETED and ticket_type.reserved == 2
    assert open_session.tickets.count() == 2


@pytest.mark.django_db
def test_a_payment_after_expiry_when_sold_out_is_flagged_for_refund_not_lost(organization, mailoutbox,
                                                                              django_capture_on_commit_callbacks):
    event = make_event(organization, quantity=2)
    tt = event.ticket_types.get()
    late = services.create_session(event, [services.Item(tt, 2)])
    services.expire_session(late.pk)
    services.create_session(event, [services.Item(tt, 2)])  # someone else took the seats
    with django_capture_on_commit_callbacks(execute=True):
        services.record_payment_succeeded(late.pk, amount=late.amount_total, currency="EUR", source="provider_webhook")
    late.refresh_from_db()
    tt.refresh_from_db()
    assert late.status == Status.PAID and "refund" in late.needs_attention
    assert tt.reserved == 2 and late.tickets.count() == 0
    assert [m.to for m in mailoutbox] == [["ops@acme.test"]]


def _race(buyers: int, tickets: int, event, connections: int = 40) -> list:
    """``buyers`` threads race; at most ``connections`` hold a database connection at once
    (PostgreSQL's default limit is 100 clients for the whole machine)."""
    tt = event.ticket_types.get()
    TicketType.objects.filter(pk=tt.pk).update(quantity=tickets)
    tt.refresh_from_db()
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(buyers)
    pool = threading.BoundedSemaphore(connections)

    def buy():
        barrier.wait()
        with pool:
            try:
                services.create_session(event, [services.Item(tt, 1)])
                outcome = "sold"
            except SoldOut:
                outcome = "sold_out"
            except Exception as exc:
                outcome = repr(exc)
            finally:
                connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=buy) for _ in range(buyers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_hundred_buyers_racing_for_ten_tickets_on_postgres_buy_exactly_ten(organization):
    event = make_event(organization)
    results = _race(100, 10, event)
    assert results.count("sold") == 10 and results.count("sold_out") == 90
    tt = event.ticket_types.get()
    assert tt.reserved == 10
    assert sum(s.line_items.get().quantity for s in CheckoutSession.objects.filter(event=event)) == 10


def test_the_sqlite_default_neither_oversells_nor_errors_under_concurrent_buyers(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}", "IEVENTS_VAR_DIR": str(tmp_path)}
    script = os.path.join(os.path.dirname(__file__), "race.py")
    out = subprocess.run([sys.executable, script, "40", "10"], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["reserved"] == 10 and result["held"] == 10
    # 10 buyers are redirected to their checkout; the rest see the sold-out page (200), nobody a 500.
    assert result["codes"].count("302") == 10
    assert result["codes"].count("200") == 30
