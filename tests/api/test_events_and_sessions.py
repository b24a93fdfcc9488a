"""The first API: events and checkout sessions, as docs/api.md writes them."""

import pytest

from checkout.models import CheckoutSession, Status
from tests.conftest import make_event

pytestmark = pytest.mark.django_db

EVENT = {
    "name": "Porto Jazz Night",
    "currency": "EUR",
    "starts_at": "2027-03-01T20:00:00Z",
    "ticket_types": [{"name": "Standing", "price": 1800, "quantity": 50}, {"name": "Seated", "price": 3500, "quantity": 20}],
}


def test_creating_an_event_returns_its_public_url_and_ticket_type_ids(api):
    response = api.post("/v1/events", EVENT, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("ev_") and body["url"].endswith(f"/e/{body['id']}/")
    assert [tt["name"] for tt in body["ticket_types"]] == ["Standing", "Seated"]
    assert all(tt["id"].startswith("tt_") for tt in body["ticket_types"])
    assert api.get(f"/v1/events/{body['id']}").json()["name"] == "Porto Jazz Night"
    assert [e["id"] for e in api.get("/v1/events").json()["data"]] == [body["id"]]


def test_patching_an_event_changes_only_what_is_given(api):
    event_id = api.post("/v1/events", EVENT, format="json").json()["id"]
    response = api.patch(f"/v1/events/{event_id}", {"venue": "Casa da Música"}, format="json")
    assert response.status_code == 200
    assert response.json()["venue"] == "Casa da Música" and response.json()["name"] == "Porto Jazz Night"


@pytest.mark.parametrize("bad", [
    {"currency": "euro"},
    {"ticket_types": [{"name": "X", "price": -1, "quantity": 1}]},
    {"starts_at": "tomorrow"},
    {"name": ""},
])
def test_invalid_events_get_a_field_error_and_create_nothing(api, bad):
    from ievents.models import Event

    response = api.post("/v1/events", {**EVENT, **bad}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request" and response.json()["error"]["fields"]
    assert not Event.objects.exists()


def test_a_malformed_json_body_is_a_400_not_a_500(api):
    response = api.generic("POST", "/v1/events", "{not json", content_type="application/json")
    assert response.status_code == 400 and "error" in response.json()


def test_without_a_key_the_api_answers_401(client):
    response = client.get("/v1/events")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


def test_a_wrong_or_revoked_key_is_401(client, api_key, organization):
    from django.utils import timezone

    from ievents.models import ApiKey

    assert client.get("/v1/events", HTTP_AUTHORIZATION="Bearer iev_nope_nope").status_code == 401
    ApiKey.objects.filter(organization=organization).update(revoked_at=timezone.now())
    assert client.get("/v1/events", HTTP_AUTHORIZATION=f"Bearer {api_key}").status_code == 401


def test_creating_a_session_holds_tickets_and_returns_the_hosted_url(api, event, ticket_type):
    response = api.post("/v1/checkout/sessions", {
        "event": event.public_id, "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 3}],
        "customer_email": "ana@example.com", "metadata": {"order": "42"},
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("cs_") and body["status"] == "open"
    assert body["amount_total"] == 3 * 2500 and body["currency"] == "EUR" and body["expires_at"]
    assert body["url"].endswith(f"/c/{body['id']}/")
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 3
    assert api.get(f"/v1/checkout/sessions/{body['id']}").json()["metadata"] == {"order": "42"}


def test_a_session_for_more_than_is_left_is_409_sold_out(api, organization):
    event = make_event(organization, quantity=1)
    tt = event.ticket_types.get()
    response = api.post("/v1/checkout/sessions", {
        "event": event.public_id, "line_items": [{"ticket_type": tt.public_id, "quantity": 2}]}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "sold_out"
    assert not CheckoutSession.objects.exists()


def test_a_sold_out_order_is_answered_sold_out_before_the_rest_of_its_body_is_checked(api, organization):
    # As the event page does: an on-sale's refused callers are answered from the rows read.
    event = make_event(organization, quantity=1)
    tt = event.ticket_types.get()
    TicketType = type(tt)
    TicketType.objects.filter(pk=tt.pk).update(reserved=1)
    body = {"event": event.public_id, "line_items": [{"ticket_type": tt.public_id, "quantity": 1}],
            "customer_email": "not an email"}
    response = api.post("/v1/checkout/sessions", body, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "sold_out"
    TicketType.objects.filter(pk=tt.pk).update(reserved=0)  # with tickets left, the body is checked
    response = api.post("/v1/checkout/sessions", body, format="json")
    assert response.status_code == 400 and "customer_email" in response.json()["error"]["fields"]
    assert not CheckoutSession.objects.exists()


@pytest.mark.parametrize("event_id", ["ev_\x00", "ev_" + "x" * 60, 7, None])
def test_an_event_id_that_names_nothing_is_a_400_not_a_500(api, event, ticket_type, event_id):
    body = {"event": event_id, "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 1}]}
    response = api.post("/v1/checkout/sessions", body, format="json")
    assert response.status_code in (400, 404), response.content


def test_one_ticket_type_on_several_lines_is_checked_against_max_per_order_as_their_sum(api, event, ticket_type):
    """Finding 6 of issue 13: ``[{tt, 10}] × 3`` with ``max_per_order`` 10 held 30."""
    line = {"ticket_type": ticket_type.public_id, "quantity": 10}
    response = api.post("/v1/checkout/sessions", {"event": event.public_id, "line_items": [line] * 3}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_order"
    assert "At most 10" in response.json()["error"]["message"]
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0 and not CheckoutSession.objects.exists()
    # Lines that add up to the maximum are one line of it.
    split = [{"ticket_type": ticket_type.public_id, "quantity": q} for q in (4, 6)]
    response = api.post("/v1/checkout/sessions", {"event": event.public_id, "line_items": split}, format="json")
    assert response.status_code == 201
    session = CheckoutSession.objects.get()
    assert [(li.ticket_type_id, li.quantity) for li in session.line_items.all()] == [(ticket_type.pk, 10)]


def test_expiring_a_session_through_the_api_releases_its_tickets(api, open_session, ticket_type):
    response = api.post(f"/v1/checkout/sessions/{open_session.public_id}/expire")
    assert response.status_code == 200 and response.json()["status"] == "expired"
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0
    again = api.post(f"/v1/checkout/sessions/{open_session.public_id}/expire")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"


def test_another_organizations_objects_are_404(api, other_organization):
    from checkout import services

    theirs = make_event(other_organization, name="Theirs")
    tt = theirs.ticket_types.get()
    session = services.create_session(theirs, [services.Item(tt, 1)])
    assert api.get(f"/v1/events/{theirs.public_id}").status_code == 404
    assert api.patch(f"/v1/events/{theirs.public_id}", {"name": "Mine now"}, format="json").status_code == 404
    assert api.get(f"/v1/checkout/sessions/{session.public_id}").status_code == 404
    assert api.post(f"/v1/checkout/sessions/{session.public_id}/expire").status_code == 404
    created = api.post("/v1/checkout/sessions", {
        "event": theirs.public_id, "line_items": [{"ticket_type": tt.public_id, "quantity": 1}]}, format="json")
    assert created.status_code == 404
    session.refresh_from_db()
    assert session.status == Status.OPEN and theirs.name == "Theirs"
    assert api.get("/v1/checkout/sessions").json()["data"] == []


def test_the_create_api_key_command_prints_the_key_alone_on_the_last_line(organization, capsys):
    from django.core.management import call_command

    from ievents.models import ApiKey

    call_command("create_api_key", "acme")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("iev_") and " " not in key
    assert ApiKey.authenticate(key).organization == organization


def test_listing_sessions_costs_the_same_statements_for_one_or_many(api, event, ticket_type):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from checkout import services

    def count_for_listing():
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/v1/checkout/sessions").status_code == 200
        return len(queries)

    services.create_session(event, [services.Item(ticket_type, 1)])
    count_for_listing()  # the key's first use this minute also records it (ApiKey.authenticate)
    one = count_for_listing()
    for _ in range(5):
        services.create_session(event, [services.Item(ticket_type, 1)])
    assert count_for_listing() == one
