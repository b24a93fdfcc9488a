"""The organizer's texts in pt-PT and English: the attendee reads their language (else the
other), and what is built for them later — the gate's payload, notifications, the ticket
email, the CSV — says what they read."""

import csv
import io

import pytest
from django.core import mail
from django.utils import timezone

from checkout import emails, services
from checkout.models import CheckoutSession
from ievents.models import Event, Question, TicketType
from tests.conftest import event_change_form, make_event, make_organizer
from tests.gate.conftest import gate, gate_server, submit_details  # noqa: F401 (fixtures)
from webhooks.models import OutboxEvent

pytestmark = pytest.mark.django_db
PT = {"HTTP_ACCEPT_LANGUAGE": "pt-PT"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def event(organization):
    event = make_event(organization)
    Event.objects.filter(pk=event.pk).update(name_pt_pt="Cimeira", description_en="Talks.",
                                              description_pt_pt="Palestras.")
    TicketType.objects.filter(event=event).update(name_pt_pt="Entrada geral")
    Question.objects.filter(event=event, text_en="T-shirt size").update(text_pt_pt="Tamanho da T-shirt",
                                                                       choices_pt_pt="P\nM\nG")
    event.refresh_from_db()
    return event


def buy_tickets(client, event, headers) -> CheckoutSession:
    ticket_type = event.ticket_types.get()
    assert client.post(event.get_absolute_url(), {f"qty_{ticket_type.public_id}": 1}, **headers).status_code == 302
    return CheckoutSession.objects.order_by("-id").first()


def test_each_attendee_reads_the_event_in_their_language(client, event):
    portuguese = client.get(event.get_absolute_url(), **PT).content.decode()
    assert "Cimeira" in portuguese and "Entrada geral" in portuguese and "Palestras." in portuguese
    assert "General" not in portuguese
    english = client.get(event.get_absolute_url(), **EN).content.decode()
    assert "Summit" in english and "General" in english and "Entrada geral" not in english


def test_a_text_written_in_one_language_only_is_shown_in_both(client, event):
    TicketType.objects.filter(event=event).update(name_pt_pt=None)
    Question.objects.filter(event=event, text_en="Company").update(text_en="", text_pt_pt="Empresa")
    page = client.get(event.get_absolute_url(), **PT).content.decode()
    assert "General" in page  # no Portuguese name: the English one, never an empty label
    session = buy_tickets(client, event, EN)
    form = client.get(f"/c/{session.public_id}/", **EN).content.decode()
    assert ">Empresa</label>" in form


def test_a_portuguese_attendee_sees_the_portuguese_ticket_name_and_the_gate_reads_it(
        client, event, gate_server, django_capture_on_commit_callbacks):  # noqa: F811
    from tests.servers import Reply

    server = gate_server(Reply(200, {}))
    session = buy_tickets(client, event, PT)
    assert session.language == "pt-pt"
    form = client.get(f"/c/{session.public_id}/", **PT).content.decode()
    assert "Entrada geral" in form and ">Tamanho da T-shirt</label>" in form and '<option value="G">' in form
    size = event.questions.get(text_en="T-shirt size")
    response = client.post(f"/c/{session.public_id}/", {"name": "Rui", "email": "rui@example.com",
                                                         f"q_{size.pk}": "G"}, **PT)
    assert response.status_code == 302, response.content.decode()[:2000]
    [payload] = server.verified
    obj = payload["data"]["object"]
    assert [item["name"] for item in obj["line_items"]] == ["Entrada geral"]
    assert obj["answers"]["Tamanho da T-shirt"] == "G" and obj["language"] == "pt-PT"
    # The notification written when the order opened carries the same words.
    created = OutboxEvent.objects.filter(type="checkout.session.created").latest("id")
    assert created.payload["data"]["object"]["line_items"][0]["name"] == "Entrada geral"


def test_the_ticket_email_sent_later_by_the_sweep_is_in_the_attendees_language(client, event):
    session = buy_tickets(client, event, PT)
    size = event.questions.get(text_en="T-shirt size")
    client.post(f"/c/{session.public_id}/", {"name": "Rui", "email": "rui@example.com", f"q_{size.pk}": "M"}, **PT)
    services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                      source="provider_webhook")
    mail.outbox.clear()
    assert emails.sweep_confirmations(now=timezone.now()) == 1  # in a worker: no language of its own
    [message] = mail.outbox
    assert "Cimeira" in message.subject and "Entrada geral" in message.body


def test_the_csv_has_the_ticket_name_the_attendee_read(client, event, organization):
    pt_session = buy_tickets(client, event, PT)
    en_session = buy_tickets(client, event, EN)
    for session in (pt_session, en_session):
        services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                          source="provider_webhook")
    client.force_login(make_organizer(organization, username="olga"))
    response = client.get("/admin/checkout/checkoutsession/export/", **EN)  # the admin in English
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    names = {row["Ticket type"] for row in csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))}
    assert {"Entrada geral", "General"} <= names


def test_the_admin_takes_both_languages_side_by_side_and_needs_one(client, event, organization):
    client.force_login(make_organizer(organization, username="olga"))
    page = client.get(f"/admin/ievents/event/{event.pk}/change/").content.decode()
    assert "Name in English" in page and "Name in Portuguese" in page
    row = page[page.index('name="name_en"') - 2000:page.index('name="name_pt_pt"')]
    assert 'class="form-row field-name_en field-name_pt_pt"' in row  # one row: side by side
    data = {**event_change_form(event), "name_en": "", "name_pt_pt": ""}
    refused = client.post(f"/admin/ievents/event/{event.pk}/change/", data)
    assert refused.status_code == 200 and "in Portuguese or in both" in refused.content.decode()
    data = {**event_change_form(event), "name_en": "", "name_pt_pt": "Só em português"}
    assert client.post(f"/admin/ievents/event/{event.pk}/change/", data).status_code == 302
    event.refresh_from_db()
    assert (event.name_en or "", event.name_pt_pt, event.name) == ("", "Só em português", "Só em português")


# --- The API ---------------------------------------------------------------------------------
def test_the_api_takes_and_returns_both_languages(api):
    body = {"name_en": "Jazz night", "name_pt": "Noite de jazz", "description_pt": "Ao vivo.", "currency": "EUR",
            "starts_at": "2030-03-01T20:00:00Z",
            "ticket_types": [{"name_en": "Standing", "name_pt": "Em pé", "price": 1800, "quantity": 5}]}
    created = api.post("/v1/events", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert (data["name"], data["name_en"], data["name_pt"]) == ("Jazz night", "Jazz night", "Noite de jazz")
    assert (data["ticket_types"][0]["name"], data["ticket_types"][0]["name_pt"]) == ("Standing", "Em pé")
    # Read in Portuguese or not, `name` stays the English text: a script's answers do not move.
    again = api.get(f"/v1/events/{data['id']}", HTTP_ACCEPT_LANGUAGE="pt-PT").json()
    assert again["name"] == "Jazz night" and again["name_pt"] == "Noite de jazz"
    # The old `name` still writes (the English text).
    patched = api.patch(f"/v1/events/{data['id']}", {"name": "Jazz"}, format="json").json()
    assert (patched["name_en"], patched["name_pt"]) == ("Jazz", "Noite de jazz")
    # A Portuguese-only event reads its Portuguese name as `name`.
    only_pt = api.post("/v1/events", {"name_pt": "Fado", "currency": "EUR", "starts_at": "2030-03-01T20:00:00Z"},
                       format="json").json()
    assert only_pt["name"] == "Fado"


def test_the_api_refuses_an_event_without_any_name_and_changes_nothing(api):
    before = Event.objects.count()
    response = api.post("/v1/events", {"currency": "EUR", "starts_at": "2030-03-01T20:00:00Z"}, format="json")
    assert response.status_code == 400 and "name" in str(response.json())
    assert Event.objects.count() == before


def test_a_session_opened_through_the_api_in_portuguese_says_so(api, event):
    ticket_type = event.ticket_types.get()
    response = api.post("/v1/checkout/sessions", {"event": event.public_id, "language": "pt-PT",
                                                  "line_items": [{"ticket_type": ticket_type.public_id,
                                                                  "quantity": 1}]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["language"] == "pt-PT"
    assert response.json()["line_items"][0]["name"] == "Entrada geral"
    bad = api.post("/v1/checkout/sessions", {"event": event.public_id, "language": "klingon",
                                             "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 1}]},
                   format="json")
    assert bad.status_code == 400


def test_the_migration_keeps_every_existing_text_as_english(event):
    from importlib import import_module

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    name = "0006_organizer_texts_in_two_languages"
    migration = import_module(f"ievents.migrations.{name}")
    apps = MigrationLoader(connection).project_state(("ievents", name)).apps  # the models as the migration sees them
    Event.objects.filter(pk=event.pk).update(name_en=None)
    Question.objects.filter(event=event).update(text_en=None, choices_en=None)
    migration.keep_existing_texts(apps, None)
    event.refresh_from_db()
    assert event.name_en == "Summit"
    assert sorted(Question.objects.filter(event=event).values_list("text_en", flat=True)) == ["Company",
                                                                                              "T-shirt size"]
