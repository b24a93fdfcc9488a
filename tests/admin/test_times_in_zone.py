"""An event's times are typed and shown in the admin on the event's clock, with the zone beside
them; orders on the organization's clock. What the attendee reads agrees to the minute."""

from datetime import UTC, datetime

import pytest

from ievents.models import Event, TicketType
from tests.conftest import event_change_form

pytestmark = pytest.mark.django_db
ADD = "/admin/ievents/event/add/"


@pytest.fixture
def admin_client(client, organizer):
    client.force_login(organizer)
    return client


def add_form(organization, *, zone, day, time, sales_day="2027-06-01", sales_time="10:00") -> dict:
    """The admin's "Add event" form as a browser posts it, with one ticket type."""
    return {
        "organization": organization.pk, "name_en": "Fado night", "description_en": "", "venue": "Alfama",
        "starts_at_0": day, "starts_at_1": time, "timezone": zone, "currency": "EUR", "published": "on",
        "ticket_types-TOTAL_FORMS": 1, "ticket_types-INITIAL_FORMS": 0,
        "ticket_types-0-name_en": "Standing", "ticket_types-0-price": "18", "ticket_types-0-quantity": 50,
        "ticket_types-0-max_per_order": 10, "ticket_types-0-position": 0,
        "ticket_types-0-sales_start_0": sales_day, "ticket_types-0-sales_start_1": sales_time,
        "questions-TOTAL_FORMS": 0, "questions-INITIAL_FORMS": 0,
        "gate-TOTAL_FORMS": 0, "gate-INITIAL_FORMS": 0, "gate-MIN_NUM_FORMS": 0, "gate-MAX_NUM_FORMS": 1,
    }


@pytest.mark.parametrize("zone, day, typed, utc, shown", [
    # Summer in Lisbon: WEST is UTC+1.
    ("Europe/Lisbon", "2027-07-10", "20:00", datetime(2027, 7, 10, 19, 0, tzinfo=UTC), "20:00 WEST"),
    # Winter in Lisbon: WET is UTC.
    ("Europe/Lisbon", "2027-01-03", "20:00", datetime(2027, 1, 3, 20, 0, tzinfo=UTC), "20:00 WET"),
    # The day Lisbon's clocks go forward (01:00 UTC on 28 March 2027): noon is already summer time.
    ("Europe/Lisbon", "2027-03-28", "12:00", datetime(2027, 3, 28, 11, 0, tzinfo=UTC), "12:00 WEST"),
    # Summer in the northern hemisphere is winter in São Paulo, which keeps UTC-3 all year.
    ("America/Sao_Paulo", "2027-07-10", "20:00", datetime(2027, 7, 10, 23, 0, tzinfo=UTC), "20:00 -03"),
])
def test_an_event_time_typed_in_the_admin_is_on_the_events_clock(admin_client, organization, zone, day, typed, utc,
                                                                  shown):
    response = admin_client.post(ADD, add_form(organization, zone=zone, day=day, time=typed))
    assert response.status_code == 302, response.content.decode()[:3000]
    event = Event.objects.get(name="Fado night")
    assert event.starts_at == utc and event.timezone == zone

    page = admin_client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()
    assert f'name="starts_at_1" value="{typed}:00"' in page and zone in page
    assert 'name="ticket_types-0-sales_start_1" value="10:00:00"' in page
    listed = admin_client.get("/admin/ievents/event/").content.decode()
    assert shown in listed
    attendee_page = admin_client.get(event.get_absolute_url()).content.decode()
    assert shown in attendee_page

    # The ticket email, its calendar file, the export and the overview say the same minute.
    import csv
    import io

    from checkout import emails

    from .orders import make_order

    event.ticket_types.update(sales_start=None)  # on sale now, to buy one
    order = make_order(event, quantity=1)
    email = emails.build(order)
    assert shown in email.body and f"DTSTART:{utc:%Y%m%dT%H%M%S}Z" in email.calendar
    exported = admin_client.get("/admin/checkout/checkoutsession/export/")
    (row,) = csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig"), newline=""))
    assert (row["Event starts"], row["Time zone"]) == (f"{day} {typed}", zone)
    if utc > datetime.now(UTC):
        assert shown in admin_client.get("/admin/").content.decode()


def test_sales_start_is_read_on_the_events_clock(admin_client, organization):
    admin_client.post(ADD, add_form(organization, zone="Europe/Lisbon", day="2027-07-10", time="20:00",
                                    sales_day="2027-06-01", sales_time="10:00"))
    assert TicketType.objects.get().sales_start == datetime(2027, 6, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("day", [
    "2027-03-28",  # 01:30 never happens in Lisbon that night (01:00 jumps to 02:00)
    "2027-10-31",  # 01:30 happens twice (02:00 goes back to 01:00): which one is not said
])
def test_a_time_that_does_not_exist_on_the_events_clock_is_a_form_error(admin_client, organization, day):
    response = admin_client.post(ADD, add_form(organization, zone="Europe/Lisbon", day=day, time="01:30"))
    assert response.status_code == 200 and "couldn" in response.content.decode()
    assert not Event.objects.exists()


def test_changing_the_zone_keeps_the_clock_time_as_typed(admin_client, event):
    Event.objects.filter(pk=event.pk).update(starts_at=datetime(2027, 7, 10, 19, 0, tzinfo=UTC))
    event.refresh_from_db()
    form = event_change_form(event)
    assert form["starts_at_1"] == "20:00:00"  # shown on Lisbon's summer clock
    response = admin_client.post(f"/admin/ievents/event/{event.pk}/change/", {**form, "timezone": "America/Sao_Paulo"})
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.timezone == "America/Sao_Paulo" and event.starts_at == datetime(2027, 7, 10, 23, 0, tzinfo=UTC)


def test_an_unknown_zone_is_a_form_error_and_changes_nothing(admin_client, event):
    before = (event.starts_at, event.timezone)
    response = admin_client.post(f"/admin/ievents/event/{event.pk}/change/",
                                 {**event_change_form(event), "timezone": "Mars/Base", "starts_at_1": "03:00:00"})
    assert response.status_code == 200 and "IANA time zone" in response.content.decode()
    event.refresh_from_db()
    assert (event.starts_at, event.timezone) == before


def test_a_new_event_starts_in_the_organizations_zone(admin_client, organization):
    organization.timezone = "Atlantic/Azores"
    organization.save()
    page = admin_client.get(ADD).content.decode()
    assert 'value="Atlantic/Azores"' in page


def test_orders_are_listed_and_shown_on_the_organizations_clock(admin_client, event, organization):
    from checkout.models import CheckoutSession

    from .orders import make_order

    order = make_order(event)
    CheckoutSession.objects.filter(pk=order.pk).update(created_at=datetime(2027, 7, 10, 19, 5, tzinfo=UTC))
    listed = admin_client.get("/admin/checkout/checkoutsession/").content.decode()
    assert "10 Jul 2027 20:05 WEST" in listed
    organization.timezone = "America/Sao_Paulo"
    organization.save()
    listed = admin_client.get("/admin/checkout/checkoutsession/").content.decode()
    assert "10 Jul 2027 16:05 -03" in listed
    page = admin_client.get(f"/admin/checkout/checkoutsession/{order.pk}/change/").content.decode()
    assert "10 July 2027, 16:05 -03" in page
    assert "America/Sao_Paulo" in page  # the zone is said on the page


def test_the_orders_date_drill_down_is_on_the_organizations_clock(admin_client, event, organization):
    from checkout.models import CheckoutSession

    from .orders import make_order

    # 23:30 UTC on 31 July is already 1 August in Lisbon (WEST).
    order = make_order(event)
    CheckoutSession.objects.filter(pk=order.pk).update(created_at=datetime(2027, 7, 31, 23, 30, tzinfo=UTC))
    august = admin_client.get("/admin/checkout/checkoutsession/", {"created_at__year": 2027, "created_at__month": 8,
                                                                   "created_at__day": 1})
    assert [o.pk for o in august.context["cl"].result_list] == [order.pk]


def test_payments_are_listed_on_the_organizations_clock(admin_client, event):
    from payments.models import Payment

    from .orders import make_order

    order = make_order(event)
    Payment.objects.filter(session=order).update(created_at=datetime(2027, 7, 10, 19, 5, tzinfo=UTC))
    assert "10 Jul 2027 20:05 WEST" in admin_client.get("/admin/payments/payment/").content.decode()


def test_every_back_office_page_is_on_the_organizations_clock(admin_client, event):
    from webhooks.models import GateCall

    call = GateCall.objects.create(event=event, outcome="denied", decision="deny", status_code=403)
    GateCall.objects.filter(pk=call.pk).update(created_at=datetime(2027, 7, 10, 19, 5, tzinfo=UTC))
    page = admin_client.get("/admin/webhooks/gatecall/").content.decode()
    assert "20:05" in page and "19:05" not in page
