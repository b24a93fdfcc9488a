"""Erasing one attendee on request: nothing of them is left, everything else is."""

import hashlib

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import models

from checkout.models import Answer, CheckoutSession, ErasureRecord, Status, Ticket
from ievents.operations import erasure
from ievents.operations.erasure_admin import erase_selected_attendees
from payments.models import Payment
from tests.conftest import make_event, make_organizer
from webhooks.models import GateCall, InboundWebhook, OutboxEvent

from .conftest import leave_traces

pytestmark = pytest.mark.django_db
TEXT_TYPES = {"CharField", "TextField", "EmailField", "URLField", "SlugField", "JSONField"}


def columns_holding(text: str) -> list[str]:
    """Every text and JSON column of every model, searched (case-insensitively) for ``text``."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:  # introspection: which columns hold text
            if field.get_internal_type() in TEXT_TYPES or isinstance(field, models.TextField):
                if model._default_manager.filter(**{f"{field.name}__icontains": text}).exists():
                    found.append(f"{model._meta.label}.{field.name}")
    return found


@pytest.fixture
def ana(event, endpoint):
    return leave_traces(event, name="Ana Silva", email="ana.silva@example.com")


@pytest.fixture
def bob(event, endpoint):
    return leave_traces(event, name="Bob Stone", email="bob@example.com", complete=False)


def test_the_scan_finds_the_attendee_everywhere_before_the_erasure(ana):
    # The scan must be able to fail: before, the person is in every kind of record.
    found = set(columns_holding(ana.email))
    assert {"checkout.CheckoutSession.customer_email", "checkout.CheckoutSession.metadata", "checkout.Answer.value",
            "payments.Payment.instructions", "webhooks.InboundWebhook.payload", "webhooks.GateCall.message",
            "webhooks.OutboxEvent.payload", "webhooks.DeliveryAttempt.response_body",
            "checkout.Transition.detail"} <= found


def test_after_an_erasure_no_table_holds_the_email_or_the_name(organization, ana, bob):
    record = erasure.erase_attendee(organization, "  ANA.Silva@Example.com ", source=ErasureRecord.Source.API,
                                    requested_by="API key iev_test")
    assert columns_holding(ana.email) == []
    assert columns_holding(ana.name) == []
    assert record.rows_total == sum(record.rows.values()) > 0
    assert record.rows["orders"] == 1 and record.rows["inbound provider messages"] == 2


def test_the_order_keeps_its_amounts_tickets_and_history_without_the_person(organization, ana):
    before = CheckoutSession.objects.get(pk=ana.session.pk)
    erasure.erase_attendee(organization, ana.email, source=ErasureRecord.Source.API)
    after = CheckoutSession.objects.get(pk=ana.session.pk)
    assert (after.customer_name, after.customer_email) == (erasure.MARKER, "")
    assert after.personal_data_erased_at is not None
    assert (after.status, after.amount_total, after.amount_paid) == (Status.COMPLETED, before.amount_total,
                                                                      before.amount_paid)
    assert Ticket.objects.filter(session=after).count() == 1
    assert after.transitions.count() == before.transitions.count() > 0
    assert set(Answer.objects.filter(session=after).values_list("value", flat=True)) == {erasure.MARKER}
    payment = Payment.objects.get(session=after)
    assert payment.instructions == {"method": "mbway", "phone": erasure.MARKER, "contact": erasure.MARKER}
    call = GateCall.objects.get(session=after)
    assert call.client_ip is None and call.message == f"{erasure.MARKER} is on the list"
    payload = OutboxEvent.objects.filter(session=after).latest("id").payload["data"]["object"]
    assert payload["customer"] == {"name": erasure.MARKER, "email": erasure.MARKER}
    assert payload["amount_total"] == before.amount_total  # the shape receivers parse is kept


def test_other_attendees_and_other_organizations_keep_their_data(organization, other_organization, ana, bob):
    rival = leave_traces(make_event(other_organization, name="Rival Fest"), name="Ana Silva", email=ana.email)
    erasure.erase_attendee(organization, ana.email, source=ErasureRecord.Source.API)
    assert CheckoutSession.objects.get(pk=bob.session.pk).customer_email == bob.email
    assert InboundWebhook.objects.filter(session=bob.session, payload__contains=bob.email).exists()
    assert CheckoutSession.objects.get(pk=rival.session.pk).customer_email == ana.email
    assert InboundWebhook.objects.filter(organization=other_organization, payload__icontains=ana.email).count() == 2


def test_the_record_says_who_when_and_how_much_but_not_the_email(organization, ana):
    record = erasure.erase_attendee(organization, ana.email, source=ErasureRecord.Source.COMMAND, requested_by="ops")
    expected = hashlib.sha256(f"{organization.public_id}:{ana.email}".encode()).hexdigest()
    assert record.email_sha256 == expected == erasure.email_digest(organization, ana.email.upper())
    assert (record.source, record.requested_by, record.organization) == ("command", "ops", organization)
    assert ana.email not in str(record.rows)


def test_erasing_again_finds_nothing_and_says_so(organization, ana):
    erasure.erase_attendee(organization, ana.email, source=ErasureRecord.Source.API)
    again = erasure.erase_attendee(organization, ana.email, source=ErasureRecord.Source.API)
    assert (again.rows, again.rows_total) == ({}, 0)
    assert ErasureRecord.objects.count() == 2


@pytest.mark.parametrize("bad", ["", "   ", "not-an-email", "x" * 250 + "@example.com"])
def test_an_erasure_without_an_email_address_is_refused(organization, ana, bad):
    with pytest.raises(erasure.ErasureError):
        erasure.erase_attendee(organization, bad, source=ErasureRecord.Source.API)
    assert ErasureRecord.objects.count() == 0
    assert CheckoutSession.objects.get(pk=ana.session.pk).customer_email == ana.email


# --- the API ---------------------------------------------------------------------------
def test_the_api_erases_the_attendee_of_the_keys_organization(api, organization, ana):
    response = api.post("/v1/attendees/erase", {"email": ana.email}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rows_total"] > 0 and body["email_sha256"] == erasure.email_digest(organization, ana.email)
    assert ana.email not in response.content.decode()
    assert columns_holding(ana.email) == []
    assert ErasureRecord.objects.get().requested_by.startswith("API key iev_")


def test_the_api_cannot_erase_another_organizations_attendee(api, other_organization):
    rival = leave_traces(make_event(other_organization, name="Rival Fest"), name="Eve Adams", email="eve@example.com")
    response = api.post("/v1/attendees/erase", {"email": rival.email}, format="json")
    assert response.status_code == 200 and response.json()["rows_total"] == 0
    assert CheckoutSession.objects.get(pk=rival.session.pk).customer_email == rival.email


@pytest.mark.parametrize("body", [{}, {"email": "nope"}, {"email": ["a@b.c"]}, {"email": "a\x00@b.c"}])
def test_the_api_refuses_a_bad_request_with_a_400(api, ana, body):
    response = api.post("/v1/attendees/erase", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert CheckoutSession.objects.get(pk=ana.session.pk).customer_email == ana.email


def test_the_api_needs_a_key(client, ana):
    response = client.post("/v1/attendees/erase", {"email": ana.email}, content_type="application/json")
    assert response.status_code == 401
    assert CheckoutSession.objects.get(pk=ana.session.pk).customer_email == ana.email


# --- the admin action and the command ---------------------------------------------------
class FakeAdmin:
    def __init__(self):
        self.messages = []

    def message_user(self, request, message, level):
        self.messages.append(message)


def test_the_admin_action_erases_each_selected_attendee_once(rf, organization, organizer, ana, bob):
    leave_traces(ana.session.event, name=ana.name, email=ana.email.upper())  # a second order, same person
    request = rf.post("/admin/checkout/checkoutsession/")
    request.user = organizer
    admin = FakeAdmin()
    erase_selected_attendees(admin, request, CheckoutSession.objects.filter(customer_email__iexact=ana.email))
    assert columns_holding(ana.email) == []
    assert CheckoutSession.objects.get(pk=bob.session.pk).customer_email == bob.email
    record = ErasureRecord.objects.get()
    assert (record.source, record.requested_by, record.rows["orders"]) == ("admin", "admin ana", 2)
    assert "Erased 1 attendee:" in admin.messages[0]


def test_the_admin_action_on_erased_orders_says_there_is_nothing_to_erase(rf, organization, organizer, ana):
    erasure.erase_attendee(organization, ana.email, source=ErasureRecord.Source.API)
    request = rf.post("/admin/checkout/checkoutsession/")
    request.user = make_organizer(organization, username="bea")
    admin = FakeAdmin()
    erase_selected_attendees(admin, request, CheckoutSession.objects.all())
    assert ErasureRecord.objects.count() == 1 and "Nothing to erase" in admin.messages[0]


def test_the_command_erases_and_prints_the_record_not_the_email(organization, ana, capsys):
    call_command("erase_attendee", organization.slug, ana.email)
    out = capsys.readouterr().out
    assert "erased" in out and ana.email not in out
    assert columns_holding(ana.email) == []


def test_the_command_refuses_an_unknown_organization(ana):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("erase_attendee", "nobody", ana.email)
