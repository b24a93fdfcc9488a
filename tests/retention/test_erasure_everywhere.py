"""An erasure on request leaves no copy of the person, in any table, any encoding, any cache.

The attendee's order is made through the API (with an ``Idempotency-Key``, and return
addresses carrying the email URL-encoded), they typed their details on the page once with
a mistake (a draft kept in their browser session), paid, the organizer corrected their
email and refunded them with a note, and the provider sent a duplicate message on the
platform route. Then ``POST /v1/attendees/erase`` with the *current* address: every
address the order ever had must be gone, as written plain, URL-encoded, JSON-escaped, in
lower or upper case, from every text and JSON column of every table (found by
introspection), from every browser session, and from the cache table.
"""

from __future__ import annotations

import base64
import json
import pickle
from urllib.parse import quote, quote_plus

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection, models

from checkout import order_actions
from checkout.models import CheckoutSession, ErasureRecord, Source
from checkout.services import record_payment_succeeded
from ievents.models import ApiKey, Role
from payments import refunds
from payments.models import Payment
from tests.conftest import make_organizer
from webhooks.models import InboundWebhook

pytestmark = pytest.mark.django_db

FIRST = "Ana.Silva+Tickets@Example.com"  # as typed at checkout
CORRECTED = "ana.silva@correct.example"  # as the organizer corrected it
NAME = "Anabela Quintas"
PHONE = "+351912345678"
TEXT_TYPES = {"CharField", "TextField", "EmailField", "URLField", "SlugField", "JSONField", "GenericIPAddressField"}


def written(address: str) -> set[str]:
    """The ways an address is found written: plain, URL-encoded, JSON-escaped; both cases."""
    forms = {address, quote(address, safe=""), quote(address, safe="@"), quote_plus(address),
             json.dumps(address)[1:-1], json.dumps(address, ensure_ascii=True)[1:-1]}
    return {variant for form in forms for variant in (form, form.lower(), form.upper())}


def needles() -> set[str]:
    return written(FIRST) | written(CORRECTED) | {NAME, PHONE, quote(NAME), quote_plus(NAME)}


def columns_holding(texts: set[str]) -> list[str]:
    """Every text and JSON column of every model, searched case-insensitively."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.get_internal_type() in TEXT_TYPES or isinstance(field, models.TextField):
                for text in texts:
                    if model._base_manager.filter(**{f"{field.name}__icontains": text}).exists():
                        found.append(f"{model._meta.label}.{field.name} holds {text!r}")
    return found


def sessions_holding(texts: set[str]) -> list[str]:
    found = []
    for row in Session.objects.all():
        decoded = json.dumps(row.get_decoded()).lower()
        found += [f"session {row.session_key[:6]}… holds {text!r}" for text in texts if text.lower() in decoded]
    return found


def cache_holding(texts: set[str]) -> list[str]:
    """The database cache table, every value unpickled (as the cache itself reads it)."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key, value FROM ievents_cache")
        for key, value in cursor.fetchall():
            readable = repr(pickle.loads(base64.b64decode(value.encode()))).lower()  # noqa: S301 - our own table
            found += [f"cache {key} holds {text!r}" for text in texts if text.lower() in readable]
    return found


def records_holding(texts: set[str]) -> list[str]:
    """The Idempotency-Key answers kept for replays, as stored (sealed)."""
    from ievents.models import IdempotencyRecord

    found = []
    for key, content in IdempotencyRecord.objects.values_list("key", "content"):
        readable = bytes(content).decode("latin-1").lower()
        found += [f"idempotency record {key[:8]} holds {text!r}" for text in texts if text.lower() in readable]
    return found


def leftovers() -> list[str]:
    texts = needles()
    return columns_holding(texts) + sessions_holding(texts) + cache_holding(texts) + records_holding(texts)


@pytest.fixture
def story(client, api, organization, event):
    ticket_type = event.ticket_types.get()
    request = {
        "event": event.public_id, "line_items": [{"ticket_type": ticket_type.public_id, "quantity": 1}],
        "customer_email": FIRST,
        "success_url": f"https://shop.example/thanks?email={quote(FIRST, safe='')}&lang=pt",
        "cancel_url": f"https://shop.example/back?who={quote_plus(FIRST)}",
        "metadata": {"contact": FIRST},
    }
    created = api.post("/v1/checkout/sessions", request, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert created.status_code == 201, created.content
    session = CheckoutSession.objects.get(public_id=created.json()["id"])
    # On the page: first with a mistake (kept as a draft in the browser session), then right.
    questions = {f"q_{q.pk}": "M" if q.kind == "choice" else f"{NAME} <{FIRST}>" for q in event.questions.all()}
    typo = client.post(f"/c/{session.public_id}/", {"name": NAME, "email": FIRST})
    assert typo.status_code == 200 and Session.objects.exists()
    saved = client.post(f"/c/{session.public_id}/", {"name": NAME, "email": FIRST, **questions})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    Payment.objects.create(session=session, provider="sandbox", amount=session.amount_total, currency="EUR",
                           status=Payment.Status.SUCCEEDED, amount_received=session.amount_total,
                           redirect_url=f"https://pay.example/go?e={quote(FIRST)}", method="mbway",
                           instructions={"method": "mbway", "phone": PHONE})
    record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR", source=Source.PROVIDER_WEBHOOK,
                             detail=f"paid by {FIRST}")
    organizer = make_organizer(organization, username="olga")
    order_actions.resend_tickets(CheckoutSession.objects.get(pk=session.pk), to=CORRECTED, by=organizer)
    refunds.refund(CheckoutSession.objects.get(pk=session.pk), 100, by=organizer, key="refund-1", outside=True,
                   note=f"bank transfer to {NAME}, asked by {CORRECTED} ({PHONE})")
    InboundWebhook.objects.create(  # the platform route: a duplicate, matched to no organization yet
        provider="stripe", organization=None, session=None, outcome="duplicate", verified=False,
        payload=json.dumps({"customer_details": {"email": FIRST.upper(), "name": NAME, "phone": PHONE}}))
    return {"session": session, "request": request}


def test_before_the_erasure_the_scan_finds_every_kind_of_copy(story):
    found = " ".join(leftovers())
    for place in ["CheckoutSession.success_url", "CheckoutSession.cancel_url", "OrderAction.summary", "Refund.note",
                  "Transition.detail", "InboundWebhook.payload", "OutboxEvent.payload", "session "]:
        assert place in found, f"the scan does not see {place}: it could not fail"
    # The idempotent answer is kept (sealed: the scan reads it and finds no address); a value
    # in clear is found, in the records as in the cache, so the scan could fail there too.
    from ievents.models import IdempotencyRecord

    kept = IdempotencyRecord.objects.get(state="done")
    IdempotencyRecord.objects.create(key="probe", fingerprint="", state="done", content=FIRST.upper().encode(),
                                     expires_at=kept.expires_at)
    assert records_holding(needles())
    IdempotencyRecord.objects.filter(key="probe").delete()
    cache.set("probe", {"who": FIRST.upper()})
    assert cache_holding(needles())
    cache.delete("probe")


def test_an_erasure_through_the_api_leaves_no_copy_anywhere(api, organization, story):
    response = api.post("/v1/attendees/erase", {"email": CORRECTED}, format="json")
    assert response.status_code == 200, response.content
    assert leftovers() == []
    session = CheckoutSession.objects.get(pk=story["session"].pk)
    assert session.amount_paid > 0 and session.transitions.exists()  # the accounts stay
    assert ErasureRecord.objects.get().rows["attendee drafts"] == 1


def test_erasing_the_first_address_finds_the_order_the_organizer_corrected_away_from_it(api, story):
    response = api.post("/v1/attendees/erase", {"email": FIRST.lower()}, format="json")
    assert response.status_code == 200 and response.json()["rows"]["orders"] == 1
    assert leftovers() == []


def test_the_idempotent_replay_of_an_erased_order_is_refused(api, story):
    api.post("/v1/attendees/erase", {"email": CORRECTED}, format="json")
    replay = api.post("/v1/checkout/sessions", story["request"], format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert replay.status_code == 410, replay.content
    assert replay.json()["error"]["code"] == "idempotency_replay_erased"
    assert not any(text.lower() in replay.content.decode().lower() for text in needles())


def test_the_idempotent_replay_still_answers_before_any_erasure(api, story):
    """The control: sealing the stored answer keeps the replay byte for byte."""
    replay = api.post("/v1/checkout/sessions", story["request"], format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == story["session"].public_id


def test_a_viewer_key_may_not_erase(organization, story):
    from rest_framework.test import APIClient

    viewer = APIClient()
    viewer.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(organization, role=Role.VIEWER)[1]}")
    response = viewer.post("/v1/attendees/erase", {"email": CORRECTED}, format="json")
    assert response.status_code == 403
    assert "erasing" in response.json()["error"]["message"]
    assert CheckoutSession.objects.get(pk=story["session"].pk).customer_email == CORRECTED


def test_expired_sessions_are_cleared_by_a_periodic_task(settings, client, story):
    from django.utils import timezone

    from ievents.tasks import clear_expired_sessions

    assert "ievents.tasks.clear_expired_sessions" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    Session.objects.update(expire_date=timezone.now() - timezone.timedelta(seconds=1))
    clear_expired_sessions()
    assert not Session.objects.exists()


def test_an_address_inside_a_longer_one_is_someone_else(api, organization, event, story):
    """Erasing ana.silva@correct.example must not touch joana.silva@correct.example's order,
    nor her unmatched provider message, though one address is a substring of the other."""
    from checkout import services

    joana = services.create_session(event, [services.Item(event.ticket_types.get(), 1)], source=Source.API)
    joana = services.save_attendee_details(joana, name="Joana Reis", email="jo" + CORRECTED, answers={})
    organizer = make_organizer(organization, username="rui")
    record_payment_succeeded(joana.pk, amount=joana.amount_total, currency="EUR", source=Source.PROVIDER_WEBHOOK)
    order_actions.resend_tickets(CheckoutSession.objects.get(pk=joana.pk), to="jo" + CORRECTED, by=organizer)
    InboundWebhook.objects.create(provider="stripe", organization=None, outcome="ignored",
                                  payload=json.dumps({"receipt_email": "jo" + CORRECTED}))
    response = api.post("/v1/attendees/erase", {"email": CORRECTED}, format="json")
    assert response.status_code == 200
    assert CheckoutSession.objects.get(pk=joana.pk).customer_email == "jo" + CORRECTED
    assert InboundWebhook.objects.filter(payload__contains="jo" + CORRECTED).exists()
    # The scan matches substrings (it would see Ana in Joana): with Joana erased too, nothing is left.
    api.post("/v1/attendees/erase", {"email": "jo" + CORRECTED}, format="json")
    assert leftovers() == []


def test_erasing_an_organizers_login_address_takes_none_of_the_orders_they_acted_on(api, organization, story):
    """An organizer whose login is an email is named in every order they act on ("… by
    olga@acme.test"): that is not an address those orders had."""
    from django.contrib.auth import get_user_model

    olga = get_user_model().objects.create_user("olga@acme.test", is_staff=True)
    order_actions.resend_tickets(CheckoutSession.objects.get(pk=story["session"].pk), by=olga)
    response = api.post("/v1/attendees/erase", {"email": "olga@acme.test"}, format="json")
    assert response.status_code == 200 and response.json()["rows_total"] == 0
    assert CheckoutSession.objects.get(pk=story["session"].pk).customer_email == CORRECTED
