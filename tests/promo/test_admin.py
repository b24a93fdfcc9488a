"""Promo codes in the back office: made and changed through the real admin forms, in the
event's time zone and currency units; single-use codes in bulk as CSV; tenants apart."""

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from checkout import promo
from checkout.models import PromoCode
from ievents.models import Event, Membership, TicketType
from tests.conftest import make_event, make_organizer

from .conftest import make_code

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/checkout/promocode/add/"


def _form(event, **fields) -> dict:
    data = {"event": event.pk, "code": "", "percent_off": "", "amount_off": "", "max_uses": "",
            "max_uses_per_order": "", "valid_from_0": "", "valid_from_1": "", "valid_until_0": "",
            "valid_until_1": "", "uses_return_on_refund": "on"}
    data.update(fields)
    return data


@pytest.fixture
def signed_in(client, organizer):
    client.force_login(organizer)
    return client


def test_an_organizer_makes_a_code_with_an_amount_in_units_and_dates_in_the_events_zone(signed_in, event, ticket_type):
    Event.objects.filter(pk=event.pk).update(timezone="America/New_York")
    response = signed_in.post(ADD_URL, _form(event, code="early-bird", amount_off="5,50", max_uses="100",
                                             ticket_types=[ticket_type.pk], valid_until_0="2027-03-01",
                                             valid_until_1="09:00"))
    assert response.status_code == 302, response.content.decode()[:3000]
    code = PromoCode.objects.get()
    assert (code.code, code.amount_off, code.max_uses) == ("EARLY-BIRD", 550, 100)
    assert code.valid_until == datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert list(code.ticket_types.all()) == [ticket_type]
    page = signed_in.get(f"/admin/checkout/promocode/{code.pk}/change/").content.decode()
    assert 'value="09:00:00"' in page and 'value="5.50"' in page  # shown as typed: New York time, units
    listing = signed_in.get("/admin/checkout/promocode/").content.decode()
    assert "€5.50 off" in listing and "0 of 100" in listing and "2027-03-01 09:00 EST" in listing


def test_an_empty_code_is_made_for_people_to_type(signed_in, event):
    assert signed_in.post(ADD_URL, _form(event, percent_off="10")).status_code == 302
    made = PromoCode.objects.get().code
    assert len(made) == 8 and not set(made) & set("01OI")


@pytest.mark.parametrize(("fields", "field"), [
    ({"percent_off": "10", "amount_off": "5"}, "amount_off"),
    ({"percent_off": "150"}, "percent_off"),
    ({"amount_off": "-1"}, "amount_off"),
    ({"code": "SAME"}, "code"),
    ({"code": "a b&c"}, "code"),
    ({"valid_from_0": "2027-03-02", "valid_from_1": "00:00", "valid_until_0": "2027-03-01", "valid_until_1": "00:00"},
     "valid_until"),
])
def test_a_bad_code_is_a_form_error_and_changes_nothing(signed_in, event, fields, field):
    make_code(event, "SAME", percent_off=5)
    response = signed_in.post(ADD_URL, _form(event, **fields))
    assert response.status_code == 200 and field in response.context["adminform"].form.errors
    assert PromoCode.objects.count() == 1


def test_the_limit_cannot_be_lowered_below_the_uses_taken(signed_in, event, ticket_type):
    code = make_code(event, "FEW", percent_off=10, max_uses=5)
    promo.take(code, 3)
    response = signed_in.post(f"/admin/checkout/promocode/{code.pk}/change/", _form(event, code="FEW",
                                                                                    percent_off="10", max_uses="2"))
    assert response.status_code == 200 and "3 use(s) are held or used" in response.content.decode()
    code.refresh_from_db()
    assert (code.max_uses, code.used) == (5, 3)
    assert signed_in.post(f"/admin/checkout/promocode/{code.pk}/change/",
                          _form(event, code="FEW", percent_off="15", max_uses="4")).status_code == 302
    code.refresh_from_db()
    assert (code.max_uses, code.used, code.percent_off) == (4, 3, 15)


def test_a_ticket_type_is_hidden_from_the_event_admin(signed_in, event, ticket_type):
    from tests.conftest import event_change_form

    data = {**event_change_form(event), "ticket_types-TOTAL_FORMS": 1, "ticket_types-INITIAL_FORMS": 1,
            "ticket_types-0-id": ticket_type.pk, "ticket_types-0-event": event.pk, "ticket_types-0-name_en": "General",
            "ticket_types-0-price": "25", "ticket_types-0-quantity": 100, "ticket_types-0-max_per_order": 10,
            "ticket_types-0-position": 0, "ticket_types-0-hidden": "on"}
    assert signed_in.post(f"/admin/ievents/event/{event.pk}/change/", data).status_code == 302
    ticket_type.refresh_from_db()
    assert ticket_type.hidden


def test_single_use_codes_are_made_in_bulk_and_downloaded_as_csv(signed_in, event, ticket_type):
    response = signed_in.post("/admin/checkout/promocode/bulk/", {
        "event": event.pk, "count": 25, "prefix": "vip-", "percent_off": 100, "ticket_types": [ticket_type.pk],
        "valid_until": "2027-01-31 23:59"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode().removeprefix("\ufeff"))))
    assert rows[0][0] == "Code" and len(rows) == 26
    codes = {row[0] for row in rows[1:]}
    assert len(codes) == 25 and all(c.startswith("VIP-") for c in codes)
    assert all(row[3] == "1" and row[6] == "2027-01-31T23:59+00:00" and row[7].endswith(f"?code={row[0]}")
               for row in rows[1:])
    assert PromoCode.objects.filter(event=event, max_uses=1, percent_off=100).count() == 25


def test_another_organizations_codes_events_and_ticket_types_stay_out_of_reach(signed_in, other_organization, event):
    theirs = make_event(other_organization, name="Theirs")
    their_code = make_code(theirs, "THEIRS", percent_off=50)
    assert signed_in.get(f"/admin/checkout/promocode/{their_code.pk}/change/").status_code in (302, 404)
    make_code(event, "OURS", percent_off=5)
    listing = signed_in.get("/admin/checkout/promocode/").content.decode()
    assert "THEIRS" not in listing and "Theirs" not in listing  # nor their event's name in the filter
    their_type = theirs.ticket_types.get()
    response = signed_in.post(ADD_URL, _form(event, code="MINE", ticket_types=[their_type.pk]))
    assert response.status_code == 200 and not PromoCode.objects.filter(code="MINE").exists()
    response = signed_in.post("/admin/checkout/promocode/bulk/", {"event": theirs.pk, "count": 5})
    assert response.status_code == 200 and PromoCode.objects.filter(event=theirs).count() == 1


def test_a_viewer_cannot_make_codes(client, organization, event):
    viewer = make_organizer(organization, username="vera")
    Membership.objects.filter(user=viewer).update(role="viewer")
    client.force_login(viewer)
    assert client.post("/admin/checkout/promocode/bulk/", {"event": event.pk, "count": 5}).status_code == 403
    assert client.post(ADD_URL, _form(event, code="NOPE")).status_code == 403
    assert not PromoCode.objects.exists() and TicketType.objects.filter(event=event).count() == 1


def test_a_code_never_moves_to_another_event_and_keeps_its_checks_on_change(signed_in, organization, event,
                                                                           ticket_type):
    code = make_code(event, "STAYS", percent_off=10)
    make_code(event, "TAKEN", percent_off=10)
    other = make_event(organization, name="Other")
    url = f"/admin/checkout/promocode/{code.pk}/change/"
    assert signed_in.post(url, _form(other, code="STAYS", percent_off="20")).status_code == 302
    code.refresh_from_db()
    assert (code.event_id, code.percent_off) == (event.pk, 20)
    response = signed_in.post(url, _form(event, code="taken", percent_off="20"))
    assert response.status_code == 200 and "code" in response.context["adminform"].form.errors
    response = signed_in.post(url, _form(event, code="STAYS", ticket_types=[other.ticket_types.get().pk]))
    assert response.status_code == 200 and "ticket_types" in response.context["adminform"].form.errors
