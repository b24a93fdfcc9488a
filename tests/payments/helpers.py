"""Shared helpers for payment and inbound-webhook tests: sessions waiting for a payment,
and provider payloads signed with each provider's real scheme."""

from __future__ import annotations

import json
import time
import uuid

import stripe

from checkout import services, state
from checkout.models import CheckoutSession, Source
from payments.models import IntegrationSettings, Payment

STRIPE_SECRET = "whsec_tenant_" + "a" * 24
STRIPE_ENV_SECRET = "whsec_environment_" + "b" * 20
EASYPAY_SECRET = "ep-notify-" + "c" * 22
IFTHENPAY_KEY = "anti-phishing-" + "d" * 18
EASYPAY_API = "https://api.test.easypay.pt/2.0"
IFTHENPAY_API = "https://api.ifthenpay.com"


def configure(organization, provider: str, *, secret: str = "", credentials: dict | None = None, enabled=True):
    row, _ = IntegrationSettings.objects.get_or_create(organization=organization, provider=provider)
    row.webhook_secret = secret
    row.credentials = json.dumps(credentials) if credentials else ""
    row.enabled = enabled
    row.save()
    return row


def pending_session(event, *, provider: str, reference: str = "", quantity: int = 2, method: str = "",
                    email: str = "ana@example.com"):
    """A session whose attendee started paying with ``provider``: status payment_pending."""
    tt = event.ticket_types.get()
    session = services.create_session(event, [services.Item(tt, quantity)], customer_email=email)
    state.apply(session.pk, "start_payment", Source.ATTENDEE, detail=provider)
    # As payments.services.begin_payment leaves it: the payment bound to the details it was
    # started for, the gate's approval of them recorded.
    approved = services.details_fingerprint(session)
    CheckoutSession.objects.filter(pk=session.pk).update(gate_approved_fingerprint=approved)
    payment = Payment.objects.create(session=session, provider=provider, provider_reference=reference,
                                     method=method, amount=session.amount_total, currency=session.currency,
                                     status=Payment.Status.PENDING, approved_fingerprint=approved)
    session.refresh_from_db()
    return session, payment


# --- Stripe --------------------------------------------------------------------------
def stripe_event(event_type: str, obj: dict, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
            "created": int(time.time()), "data": {"object": obj}}


def checkout_object(session, *, payment_status="paid", amount=None, currency="eur", status="complete") -> dict:
    return {"id": "cs_test_" + session.public_id[3:], "object": "checkout.session", "status": status,
            "payment_status": payment_status, "client_reference_id": session.public_id,
            "metadata": {"checkout_session": session.public_id},
            "amount_total": session.amount_total if amount is None else amount, "currency": currency,
            "payment_intent": "pi_" + session.public_id[3:]}


def intent_object(session, **extra) -> dict:
    obj = {"id": "pi_" + session.public_id[3:], "object": "payment_intent", "amount": session.amount_total,
           "amount_received": 0, "amount_capturable": 0, "currency": "eur",
           "metadata": {"checkout_session": session.public_id}}
    obj.update(extra)
    return obj


def charge_object(session, *, refunded: int) -> dict:
    return {"id": "ch_" + session.public_id[3:], "object": "charge", "amount": session.amount_total,
            "amount_refunded": refunded, "currency": "eur", "payment_intent": "pi_" + session.public_id[3:],
            "metadata": {"checkout_session": session.public_id}}


def stripe_headers(payload: str, secret: str, timestamp: int | None = None) -> dict:
    """The ``Stripe-Signature`` header exactly as Stripe computes it (the library's own code)."""
    return {"HTTP_STRIPE_SIGNATURE": stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)}


def post_stripe(client, org: str, event: dict, secret: str = STRIPE_SECRET, *, timestamp=None, path=None, **extra):
    payload = json.dumps(event)
    return client.post(path or f"/api/webhooks/stripe/{org}", data=payload, content_type="application/json",
                       **stripe_headers(payload, secret, timestamp), **extra)


# --- Easypay ---------------------------------------------------------------------------
def easypay_notification(easypay_id: str, *, type_="capture", status="success") -> dict:
    return {"id": easypay_id, "key": "tx-key", "type": type_, "status": status,
            "messages": ["Your request was successfully captured"], "date": "2026-11-23 10:00:00"}


def easypay_single(easypay_id: str, *, payment_status="paid", value=50.0, paid=None, currency="EUR") -> dict:
    """``GET /single/{id}`` as Easypay documents it (payment_status, value, transactions.values.paid)."""
    body = {"id": easypay_id, "value": value, "currency": currency, "payment_status": payment_status,
            "method": {"type": "mb", "status": "active", "entity": 21098, "reference": "123456789"},
            "transactions": []}
    if payment_status == "paid":
        body["transactions"] = [{"id": str(uuid.uuid4()), "values": {"requested": value,
                                                                        "paid": value if paid is None else paid}}]
    return body


def post_easypay(client, org: str, note: dict, secret: str | None = EASYPAY_SECRET):
    query = f"?secret={secret}" if secret is not None else ""
    return client.post(f"/api/webhooks/easypay/{org}{query}", data=json.dumps(note), content_type="application/json")


# --- Ifthenpay -------------------------------------------------------------------------
def ifthenpay_callback(client, org: str, *, request_id: str, amount: str, key: str | None = IFTHENPAY_KEY,
                       reference: str = "123456789", entity: str = "12345", order_id: str = "abc"):
    params = {"orderId": order_id, "amount": amount, "requestId": request_id, "entity": entity,
              "reference": reference, "payment_datetime": "23-11-2026 10:00:00"}
    if key is not None:
        params["key"] = key
    return client.get(f"/api/webhooks/ifthenpay/{org}", params)
