"""Where the money of an order with a code is shown to the organizer: the order's page
(list price, discount, price paid), the overview's "Codes" list and the CSV export."""

import csv
import io

import pytest

from checkout import promo, services
from checkout.models import Source
from ievents.models import TicketType

from .conftest import make_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_with_code(event, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(price=1850)
    ticket_type.refresh_from_db()
    make_code(event, "MEMBERS20", percent_off=20)
    session = services.create_session(event, [services.Item(ticket_type, 2)], customer_email="ana@example.com",
                                      promo_code=promo.check_code(event, "members20"))
    services.record_payment_succeeded(session.pk, amount=2960, currency="EUR", source=Source.PROVIDER_WEBHOOK)
    session.refresh_from_db()
    return session


def test_the_orders_page_shows_list_price_discount_and_price_paid(client, organizer, paid_with_code):
    client.force_login(organizer)
    page = client.get(f"/admin/checkout/checkoutsession/{paid_with_code.pk}/change/").content.decode()
    assert "<td>€18.50</td><td>€7.40</td><td>€29.60</td>" in page
    assert "<code>MEMBERS20</code>, €7.40 off" in page


def test_the_overview_lists_each_code_with_its_orders_and_discount(client, organizer, paid_with_code, event,
                                                                    ticket_type):
    services.create_session(event, [services.Item(ticket_type, 1)], promo_code=promo.check_code(event, "members20"))
    client.force_login(organizer)
    page = client.get("/admin/").content.decode()
    assert '<h2 id="codes-title">Codes</h2>' in page
    # The open order holds a use but gave nothing yet: one paid order, €7.40.
    assert ">MEMBERS20</a></th><td class=\"num\">1</td><td class=\"num\">€7.40</td>" in page
    listed = client.get(f"/admin/checkout/checkoutsession/?event__id__exact={event.pk}&promo_code_text=MEMBERS20")
    assert listed.status_code == 200 and paid_with_code.public_id in listed.content.decode()


def test_the_csv_export_carries_the_code_and_each_tickets_discount(client, organizer, paid_with_code):
    client.force_login(organizer)
    response = client.get("/admin/checkout/checkoutsession/export/")
    text = b"".join(response.streaming_content).decode().removeprefix("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    # The order's paid amount is on its first row only (trust's export: money once per order).
    assert [(r["Ticket price"], r["Promo code"], r["Ticket discount"], r["Order paid"]) for r in rows] == [
        ("18.50", "MEMBERS20", "3.70", "29.60"), ("18.50", "MEMBERS20", "3.70", "")]
