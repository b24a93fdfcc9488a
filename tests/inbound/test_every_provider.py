"""The rules every provider's route keeps, provider by provider."""

import json

import pytest
import responses
from django.core import mail

from checkout import services
from checkout.models import Source, Status
from webhooks.models import InboundWebhook

from ..payments.helpers import (
    EASYPAY_API,
    EASYPAY_SECRET,
    IFTHENPAY_KEY,
    STRIPE_SECRET,
    checkout_object,
    configure,
    easypay_notification,
    easypay_single,
    ifthenpay_callback,
    pending_session,
    post_easypay,
    post_stripe,
    stripe_event,
)

pytestmark = pytest.mark.django_db
PROVIDERS = ["stripe", "easypay", "ifthenpay", "sandbox"]
EP_ID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_organization_is_404_and_nothing_is_recorded(client, organization, provider, method):
    response = getattr(client, method)(f"/api/webhooks/{provider}/org_nobodyhere")
    assert response.status_code == 404
    assert not InboundWebhook.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_oversized_body_is_413_for_every_provider(client, settings, organization, provider):
    settings.INBOUND_WEBHOOK_MAX_BYTES = 2048
    response = client.post(f"/api/webhooks/{provider}/{organization.public_id}", data="{" + " " * 4096 + "}",
                           content_type="application/json")
    assert response.status_code == 413
    assert not InboundWebhook.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nothing_is_verified_without_a_secret_anywhere(client, organization, provider):
    configure(organization, provider, secret="")
    response = client.post(f"/api/webhooks/{provider}/{organization.public_id}?secret=&key=", data="{}",
                           content_type="application/json")
    assert response.status_code == 400
    assert InboundWebhook.objects.get().verified is False


# --- A Multibanco reference paid after the hold expired ---------------------------------------
def _pay_late(client, provider, organization, session):
    if provider == "easypay":
        responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=easypay_single(EP_ID, value=session.amount_total / 100))
        return post_easypay(client, organization.public_id, easypay_notification(EP_ID))
    if provider == "ifthenpay":
        return ifthenpay_callback(client, organization.public_id, request_id=EP_ID,
                                  amount=f"{session.amount_total / 100:.2f}")
    return post_stripe(client, organization.public_id, stripe_event("checkout.session.completed", checkout_object(session)))


@pytest.fixture
def late_setup(organization):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    configure(organization, "easypay", secret=EASYPAY_SECRET, credentials={"account_id": "a", "api_key": "k"})
    configure(organization, "ifthenpay", secret=IFTHENPAY_KEY)
    return organization


@responses.activate
@pytest.mark.parametrize("provider", ["stripe", "easypay", "ifthenpay"])
def test_paid_the_next_day_with_tickets_left_completes(client, late_setup, event, provider):
    session, _ = pending_session(event, provider=provider, reference=EP_ID, method="multibanco")
    services.expire_session(session.pk, Source.TIMER, detail="hold expired")
    assert _pay_late(client, provider, late_setup, session).status_code == 200
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.tickets.count() == 2 and not session.needs_attention


@responses.activate
@pytest.mark.parametrize("provider", ["stripe", "easypay", "ifthenpay"])
def test_paid_the_next_day_when_sold_out_is_flagged_for_refund_and_the_organizer_told(
        client, late_setup, provider, django_capture_on_commit_callbacks):
    from tests.conftest import make_event

    event = make_event(late_setup, quantity=2)
    session, _ = pending_session(event, provider=provider, reference=EP_ID, method="multibanco")
    services.expire_session(session.pk, Source.TIMER, detail="hold expired")
    services.create_session(event, [services.Item(event.ticket_types.get(), 2)])
    with django_capture_on_commit_callbacks(execute=True):
        assert _pay_late(client, provider, late_setup, session).status_code == 200
    session.refresh_from_db()
    assert session.status == Status.PAID and "refund needed" in session.needs_attention
    assert session.tickets.count() == 0 and event.ticket_types.get().reserved == 2
    assert [m.to for m in mail.outbox] == [["ops@acme.test"]]


@responses.activate
def test_easypay_news_in_any_order_ends_paid_once(client, late_setup, event):
    """Authorisation after capture, capture twice, an old 'pending' last: the API's answer
    at the time of each notification decides, and a paid session never goes back."""
    session, _ = pending_session(event, provider="easypay", reference=EP_ID)
    answers = [easypay_single(EP_ID, payment_status="paid"), easypay_single(EP_ID, payment_status="authorised"),
               easypay_single(EP_ID, payment_status="pending"), easypay_single(EP_ID, payment_status="paid")]
    notes = [("capture", "success"), ("authorisation", "success"), ("capture", "pending"), ("capture", "success")]
    responses.get(f"{EASYPAY_API}/single/{EP_ID}", json=answers[0])
    for answer, (type_, status) in zip(answers, notes, strict=True):
        responses.replace(responses.GET, f"{EASYPAY_API}/single/{EP_ID}", json=answer)
        note = {**easypay_notification(EP_ID, type_=type_, status=status), "date": f"{type_}-{status}-{answer['payment_status']}"}
        assert post_easypay(client, late_setup.public_id, note).status_code == 200
        session.refresh_from_db()
        assert session.status == Status.COMPLETED
    assert session.transitions.filter(trigger="pay").count() == 1 and session.tickets.count() == 2
    assert json.loads(InboundWebhook.objects.order_by("id").first().payload)["id"] == EP_ID
