"""Find my order does not tell whether an address has orders: the page is the same for a
known and an unknown address, and takes the same time within noise.

The time is compared within one run, never against a wall clock: the two kinds of request
are interleaved (so a slow moment of the machine falls on both), and the median of each is
compared with the other's. A known address with many orders is the strongest case: were the
orders read in the request, its median would grow with them.
"""

import re
import statistics
import time

import pytest

from checkout.models import AttendeeEmail, CheckoutSession

from ..refunds.helpers import paid_order

pytestmark = pytest.mark.django_db

ROUNDS = 25


def _page(response) -> str:
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return re.sub(r"\S+@example\.com", "ADDRESS", text)


def test_a_known_and_an_unknown_address_get_the_same_page_in_the_same_time(client, event, settings):
    settings.FIND_ORDER_MAX_PER_EMAIL = settings.FIND_ORDER_MAX_PER_CLIENT = 10_000
    for _ in range(8):
        order, _ = paid_order(event, provider="sandbox", quantity=1)
        CheckoutSession.objects.filter(pk=order.pk).update(customer_email="known@example.com")
    url = f"/find/{event.organization.slug}/"
    times, pages = {"known": [], "unknown": []}, {"known": set(), "unknown": set()}
    for round_ in range(ROUNDS):
        order = ("known", "unknown") if round_ % 2 else ("unknown", "known")
        for kind in order:
            address = "known@example.com" if kind == "known" else f"nobody{round_}@example.com"
            started = time.perf_counter()
            response = client.post(url, {"email": address})
            times[kind].append(time.perf_counter() - started)
            assert response.status_code == 200
            pages[kind].add(_page(response))
    assert pages["known"] == pages["unknown"] and len(pages["known"]) == 1
    ratio = statistics.median(times["known"]) / statistics.median(times["unknown"])
    assert 0.67 < ratio < 1.5, f"known/unknown median time ratio {ratio:.2f}"
    # Both wrote exactly one request each; which orders, if any, is left to the sender.
    assert AttendeeEmail.objects.filter(kind="order_links").count() == 2 * ROUNDS
