"""Promo codes through the API: ``/v1/events/{id}/promo_codes`` and ``promo_code`` on a
checkout session, its representation, and every payload that carries it."""

import pytest

from checkout.models import CheckoutSession, PromoCode
from ievents.models import TicketType
from tests.conftest import make_event
from webhooks.gate import validate_payload
from webhooks.models import OutboxEvent

from .conftest import make_code

pytestmark = pytest.mark.django_db


def _url(event, code_id=""):
    return f"/v1/events/{event.public_id}/promo_codes" + (f"/{code_id}" if code_id else "")


def test_a_code_is_created_read_changed_and_deleted(api, event, ticket_type):
    hidden = TicketType.objects.create(event=event, name="Crew", price=0, quantity=5, hidden=True)
    response = api.post(_url(event), {
        "code": "spring-20", "percent_off": 20, "ticket_types": [ticket_type.public_id],
        "reveals_ticket_types": [hidden.public_id], "max_uses": 10, "max_uses_per_order": 2,
        "valid_from": "2026-03-01T09:00:00", "valid_until": "2026-04-01T00:00:00+01:00",
    }, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("pc_") and body["code"] == "SPRING-20" and body["used"] == 0
    assert body["ticket_types"] == [ticket_type.public_id] and body["reveals_ticket_types"] == [hidden.public_id]
    assert body["valid_from"] == "2026-03-01T09:00:00Z"  # no offset: the event's time (Lisbon, WET in March)
    assert body["valid_until"] == "2026-04-01T00:00:00+01:00"

    assert api.get(_url(event, body["id"])).json()["code"] == "SPRING-20"
    assert [c["id"] for c in api.get(_url(event)).json()["data"]] == [body["id"]]
    changed = api.patch(_url(event, body["id"]), {"percent_off": None, "amount_off": 500, "ticket_types": []},
                        format="json")
    assert changed.status_code == 200 and changed.json()["amount_off"] == 500 and changed.json()["ticket_types"] == []
    assert api.delete(_url(event, body["id"])).status_code == 204
    assert not PromoCode.objects.exists()


def test_a_code_without_letters_given_is_made_for_people_to_type(api, event):
    body = api.post(_url(event), {"max_uses": 1}, format="json").json()
    assert len(body["code"]) == 8 and not set(body["code"]) & set("01OI")
    assert body["percent_off"] is None and body["amount_off"] is None  # access only


@pytest.mark.parametrize(("payload", "field"), [
    ({"code": "X", "percent_off": 10}, "code"),
    ({"code": "ok-code", "percent_off": 101}, "percent_off"),
    ({"code": "ok-code", "percent_off": 0}, "percent_off"),
    ({"code": "ok-code", "amount_off": -5}, "amount_off"),
    ({"code": "ok-code", "percent_off": 10, "amount_off": 100}, "amount_off"),
    ({"code": "ok-code", "ticket_types": ["tt_nope"]}, "ticket_types"),
    ({"code": "ok-code", "valid_from": "2026-03-02T00:00:00Z", "valid_until": "2026-03-01T00:00:00Z"}, "valid_until"),
    ({"code": "bad code!"}, "code"),
])
def test_bad_codes_are_refused_field_by_field_and_nothing_is_made(api, event, payload, field):
    response = api.post(_url(event), payload, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert not PromoCode.objects.exists()


def test_the_same_code_twice_in_an_event_is_a_conflict_in_any_case(api, event):
    assert api.post(_url(event), {"code": "twice"}, format="json").status_code == 201
    response = api.post(_url(event), {"code": "TWICE"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "code_taken"


def test_the_limit_cannot_go_below_the_uses_taken(api, event, ticket_type):
    code = make_code(event, "FEW", percent_off=10, max_uses=5)
    for _ in range(3):
        api.post("/v1/checkout/sessions", {"event": event.public_id, "promo_code": "few",
                                           "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 1}]},
                 format="json")
    response = api.patch(_url(event, code.public_id), {"max_uses": 2}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "max_uses_below_used"
    code.refresh_from_db()
    assert (code.max_uses, code.used) == (5, 3)


def test_another_organizations_event_code_or_ticket_type_is_not_found(api, other_organization, event):
    theirs = make_event(other_organization, name="Theirs")
    their_code = make_code(theirs, "THEIRS", percent_off=50)
    assert api.get(_url(theirs)).status_code == 404
    assert api.post(_url(theirs), {"code": "mine"}, format="json").status_code == 404
    assert api.get(_url(event, their_code.public_id)).status_code == 404
    assert api.delete(_url(theirs, their_code.public_id)).status_code == 404
    response = api.post(_url(event), {"code": "mine", "ticket_types": [theirs.ticket_types.get().public_id]},
                        format="json")
    assert response.status_code == 400
    assert PromoCode.objects.filter(pk=their_code.pk).exists()


def test_a_session_opened_with_a_code_shows_it_in_the_api_the_events_and_the_gate_payload(api, event, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(price=1850)
    make_code(event, "MEMBERS20", percent_off=20)
    response = api.post("/v1/checkout/sessions", {
        "event": event.public_id, "promo_code": "members20",
        "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 2}]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["promo_code"], body["discount_total"], body["amount_total"]) == ("MEMBERS20", 740, 2960)
    line = body["line_items"][0]
    assert (line["unit_price"], line["unit_discount"], line["discount"], line["amount"]) == (1850, 370, 740, 2960)
    assert api.get(f"/v1/checkout/sessions/{body['id']}").json()["discount_total"] == 740
    created = OutboxEvent.objects.get(type="checkout.session.created")
    assert created.payload["data"]["object"]["promo_code"] == "MEMBERS20"
    gate = validate_payload(CheckoutSession.objects.get())["data"]["object"]
    assert gate["discount_total"] == 740 and gate["line_items"][0]["unit_discount"] == 370


@pytest.mark.parametrize(("fields", "error", "status"), [
    ({}, "promo_code_unknown", 400),
    ({"max_uses": 0}, "promo_code_used_up", 409),
    ({"max_uses_per_order": 1}, "promo_code_too_many", 400),
])
def test_a_session_with_a_code_that_does_not_fit_is_refused_and_holds_nothing(api, event, ticket_type, fields, error,
                                                                                status):
    if fields:
        make_code(event, "CODE", percent_off=10, **fields)
    response = api.post("/v1/checkout/sessions", {
        "event": event.public_id, "promo_code": "code" if fields else "nope",
        "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 2}]}, format="json")
    assert response.status_code == status and response.json()["error"]["code"] == error
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0 and not CheckoutSession.objects.exists()


def test_a_hidden_ticket_type_is_refused_without_its_access_code(api, event):
    made = api.post("/v1/events", {"name": "Gala", "currency": "EUR", "starts_at": "2027-03-01T20:00:00Z",
                                   "ticket_types": [{"name": "Crew", "price": 0, "quantity": 5, "hidden": True}]},
                    format="json")
    assert made.json()["ticket_types"][0]["hidden"] is True
    hidden = TicketType.objects.create(event=event, name="Crew", price=0, quantity=5, hidden=True)
    make_code(event, "CREW", reveals=[hidden])
    line = [{"ticket_type": hidden.public_id, "quantity": 1}]
    assert api.post("/v1/checkout/sessions", {"event": event.public_id, "line_items": line},
                    format="json").status_code == 400
    assert api.post("/v1/checkout/sessions", {"event": event.public_id, "line_items": line, "promo_code": "crew"},
                    format="json").status_code == 201
