"""Issue 13, finding 5: nobody holds an event's whole inventory (checkout/limits.py).

Through the real event page: three anonymous ``POST /e/<event>/`` of 10 held all 30
tickets of a type. Now one client address holds at most
``CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS`` at a time and opens at most
``CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS`` checkouts per window; whoever hits a limit gets a
429 page that says why in an alert. The test client's own address (127.0.0.1) is exempt in
development, so every request here comes from a documentation address.
"""

import json
import threading
from datetime import timedelta

import pytest
import responses
from django.db import connection
from django.test import Client
from django.utils import timezone

from checkout import limits, services
from checkout.models import CheckoutSession, Status
from tests.conftest import make_event
from tests.payments.helpers import EASYPAY_API, configure

pytestmark = pytest.mark.django_db

ATTENDEE = "203.0.113.5"
NEIGHBOUR = "198.51.100.7"


@pytest.fixture
def event(organization):
    return make_event(organization, quantity=30, questions=False)


@pytest.fixture
def ticket_type(event):
    return event.ticket_types.get()


def take(client, event, ticket_type, quantity=10, address=ATTENDEE, **headers):
    return client.post(event.get_absolute_url(), {f"qty_{ticket_type.public_id}": quantity}, REMOTE_ADDR=address,
                       **headers)


def reserved(ticket_type) -> int:
    ticket_type.refresh_from_db()
    return ticket_type.reserved


def assert_limit_page(response, *words):
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    page = response.content.decode()
    alert = page.split('role="alert">', 1)[1].split("</div>", 1)[0]
    for word in words:
        assert word in alert, alert
    assert 'name="qty_' in page  # the page is still the event's: the attendee can choose fewer


def test_one_address_holds_at_most_the_cap_and_the_last_tickets_stay_for_others(client, event, ticket_type):
    assert take(client, event, ticket_type).status_code == 302
    assert take(client, event, ticket_type).status_code == 302
    response = take(client, event, ticket_type)  # was the third of three that held all 30
    assert_limit_page(response, "You already hold 20 tickets", "at most 20")
    assert reserved(ticket_type) == 20 and CheckoutSession.objects.count() == 2
    assert set(CheckoutSession.objects.values_list("address_key", flat=True)) == {ATTENDEE}
    # Someone else still gets the rest.
    assert take(client, event, ticket_type, address=NEIGHBOUR).status_code == 302
    assert reserved(ticket_type) == 30


def test_tickets_fewer_than_the_cap_allows_are_still_taken(settings, client, event, ticket_type):
    settings.CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS = 12
    assert take(client, event, ticket_type, quantity=10).status_code == 302
    assert_limit_page(take(client, event, ticket_type, quantity=3), "at most 12")
    assert take(client, event, ticket_type, quantity=2).status_code == 302
    assert reserved(ticket_type) == 12


def test_holds_that_ended_or_were_paid_do_not_count(client, event, ticket_type):
    take(client, event, ticket_type)
    take(client, event, ticket_type)
    first, second = CheckoutSession.objects.order_by("pk")
    assert client.post(f"/c/{first.public_id}/cancel/", REMOTE_ADDR=ATTENDEE).status_code == 302
    # Bought through the pages (sandbox): sold, not held.
    form = f"/c/{second.public_id}/"
    review = client.post(form, {"name": "Ana Silva", "email": "ana@example.com"}, REMOTE_ADDR=ATTENDEE)["Location"]
    sandbox = client.post(review, {"provider": "sandbox"}, REMOTE_ADDR=ATTENDEE)["Location"]
    back = client.post(sandbox, {"outcome": "success"}, REMOTE_ADDR=ATTENDEE)["Location"]
    client.get(back, REMOTE_ADDR=ATTENDEE)
    assert CheckoutSession.objects.get(pk=second.pk).status == Status.COMPLETED
    assert take(client, event, ticket_type).status_code == 302
    assert take(client, event, ticket_type).status_code == 302


def test_starting_checkouts_is_rate_limited_per_address(settings, client, event, ticket_type):
    settings.CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS = 3
    for _ in range(3):
        assert take(client, event, ticket_type, quantity=1).status_code == 302
        session = CheckoutSession.objects.latest("pk")
        client.post(f"/c/{session.public_id}/cancel/", REMOTE_ADDR=ATTENDEE)  # nothing held: only the rate counts
    response = take(client, event, ticket_type, quantity=1)
    assert_limit_page(response, "Too many checkouts", "try again in about 10 minutes")
    assert 1 <= int(response["Retry-After"]) <= 600
    assert take(client, event, ticket_type, quantity=1, address=NEIGHBOUR).status_code == 302
    # Once the window has passed, the address may start again.
    CheckoutSession.objects.filter(address_key=ATTENDEE).update(created_at=timezone.now() - timedelta(minutes=11))
    assert take(client, event, ticket_type, quantity=1).status_code == 302


def test_a_limit_is_said_in_the_attendees_language(settings, client, event, ticket_type):
    """Written with gettext where the limit is decided, not translated from a list of known
    English sentences: a Portuguese attendee reads it in Portuguese, plurals and all."""
    settings.CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS = 1
    pt = {"HTTP_ACCEPT_LANGUAGE": "pt-PT"}
    assert take(client, event, ticket_type, quantity=1, **pt).status_code == 302
    response = take(client, event, ticket_type, quantity=1, **pt)
    assert_limit_page(response, "Foram iniciadas demasiadas compras", "dentro de cerca de 10 minutos")
    assert "Too many checkouts" not in response.content.decode()


def test_a_spoofed_x_forwarded_for_is_ignored_without_trusted_proxies(client, event, ticket_type):
    for n in range(3):
        response = take(client, event, ticket_type, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert_limit_page(response, "You already hold 20")
    assert reserved(ticket_type) == 20


def test_behind_a_trusted_proxy_the_address_it_saw_counts_and_what_the_client_wrote_does_not(settings, client, event,
                                                                                           ticket_type):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for n in range(2):
        # The client wrote the first entry; our proxy appended the address it saw.
        assert take(client, event, ticket_type, address=proxy,
                    HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {ATTENDEE}").status_code == 302
    assert_limit_page(take(client, event, ticket_type, address=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.9, {ATTENDEE}"),
                      "You already hold 20")
    assert take(client, event, ticket_type, address=proxy, HTTP_X_FORWARDED_FOR=NEIGHBOUR).status_code == 302
    assert set(CheckoutSession.objects.values_list("address_key", flat=True)) == {ATTENDEE, NEIGHBOUR}


def test_an_ipv6_subscriber_counts_as_its_64_network(client, event, ticket_type):
    assert take(client, event, ticket_type, address="2001:db8:1:2::1").status_code == 302
    assert take(client, event, ticket_type, address="2001:db8:1:2:ffff::9").status_code == 302
    assert_limit_page(take(client, event, ticket_type, address="2001:db8:1:2:abcd::1"), "You already hold 20")
    assert take(client, event, ticket_type, address="2001:db8:1:3::1").status_code == 302
    assert limits.address_key("::ffff:203.0.113.5") == ATTENDEE


def test_exempt_addresses_and_the_api_are_not_limited(settings, client, api, event, ticket_type):
    settings.CHECKOUT_LIMITS_EXEMPT_ADDRESSES = ["203.0.113.0/24"]
    for _ in range(2):
        assert take(client, event, ticket_type).status_code == 302
    assert take(client, event, ticket_type, quantity=5).status_code == 302
    settings.CHECKOUT_LIMITS_EXEMPT_ADDRESSES = []
    # The API: the organizer's own server opening checkouts for its attendees.
    body = {"event": event.public_id, "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 5}]}
    assert api.post("/v1/checkout/sessions", body, format="json", REMOTE_ADDR=ATTENDEE).status_code == 201
    assert reserved(ticket_type) == 30


def test_a_limit_of_zero_is_off(settings, client, event, ticket_type):
    settings.CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS = 0
    settings.CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS = 0
    for _ in range(3):
        assert take(client, event, ticket_type).status_code == 302
    assert reserved(ticket_type) == 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_requests_at_once_from_one_address_do_not_get_past_the_cap(organization):
    """Sent together, they are counted one after another (the ticket types are locked first)."""
    event = make_event(organization, quantity=100, questions=False)
    ticket_type = event.ticket_types.get()
    codes, lock = [], threading.Lock()
    start = threading.Barrier(12)

    def attendee_tab():
        client = Client()
        start.wait()
        try:
            code = take(client, event, ticket_type, quantity=5).status_code
        finally:
            connection.close()
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=attendee_tab) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [302] * 4 + [429] * 8
    assert reserved(ticket_type) == 20


# --- The hold a pending payment stretches ---------------------------------------------------------
@responses.activate
def test_a_multibanco_reference_stretches_the_hold_no_further_than_the_maximum(settings, client, organization, event):
    settings.CHECKOUT_MAX_PENDING_HOLD_HOURS = 6
    configure(organization, "easypay", credentials={"account_id": "acc", "api_key": "key"})
    session = services.create_session(event, [services.Item(event.ticket_types.get(), 2)])
    session = services.save_attendee_details(session, name="Ana Silva", email="ana@example.com", answers={})
    responses.post(f"{EASYPAY_API}/single", status=201, json={
        "status": "ok", "id": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
        "method": {"type": "mb", "status": "pending", "entity": 21098, "reference": "702358145"}})
    assert client.post(f"/c/{session.public_id}/review/", {"provider": "easypay"}).status_code == 302
    assert json.loads(responses.calls[0].request.body)["method"] == "mb"
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING
    # The reference is payable for 48 h; the hold ends 6 h after the checkout opened.
    assert session.expires_at == session.created_at + timedelta(hours=6)


def test_a_stretch_is_measured_from_when_the_checkout_opened_not_from_each_new_payment(settings, event):
    session = services.create_session(event, [services.Item(event.ticket_types.get(), 1)])
    opened = timezone.now() - timedelta(hours=40)
    CheckoutSession.objects.filter(pk=session.pk).update(created_at=opened)
    session.refresh_from_db()
    reference_deadline = timezone.now() + timedelta(hours=settings.MULTIBANCO_DEADLINE_HOURS)
    assert limits.pending_hold_until(session, reference_deadline) == opened + timedelta(hours=48)
    soon = timezone.now() + timedelta(hours=2)
    assert limits.pending_hold_until(session, soon) == soon


def test_the_limits_cost_five_statements_on_the_page_that_takes_tickets(client, event, ticket_type):
    """The ticket types locked, one count, the address written, the reservation's savepoint
    (two statements): counted, so the cost cannot grow unnoticed (tests/perf counts the
    rest of the page, from the exempt development address)."""
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for address in ("127.0.0.1", ATTENDEE):  # exempt in development, then limited
        with CaptureQueriesContext(connection) as queries:
            assert take(client, event, ticket_type, quantity=1, address=address).status_code == 302
        counts[address] = len(queries.captured_queries)
    assert counts[ATTENDEE] - counts["127.0.0.1"] <= 5


def test_an_unannounced_proxy_is_reported_once(client, event, ticket_type, caplog, monkeypatch):
    monkeypatch.setattr(limits, "_proxy_warned", threading.Event())
    with caplog.at_level("WARNING", logger="checkout.limits"):
        take(client, event, ticket_type, quantity=1, HTTP_X_FORWARDED_FOR="192.0.2.1")
        take(client, event, ticket_type, quantity=1, HTTP_X_FORWARDED_FOR="192.0.2.2")
    warnings = [r for r in caplog.records if "TRUSTED_PROXY_COUNT is 0" in r.getMessage()]
    assert len(warnings) == 1
