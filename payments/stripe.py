"""Stripe: hosted Checkout Sessions, confirmed on return, and signed webhooks.

Our checkout session id travels in ``client_reference_id``, in ``metadata.checkout_session``
and in the payment intent's ``metadata``, so every event we subscribe to names it (a
charge inherits its payment intent's metadata). Webhooks are verified with the ``stripe``
library's own code (``Stripe-Signature: t=…,v1=…``, 300 s tolerance) before anything in
them is read.
"""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import quote, urlencode

import stripe
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from .base import (
    InboundRequest,
    MalformedWebhook,
    ParsedWebhook,
    PaymentProvider,
    PaymentUpdate,
    ProviderError,
    ProviderUnavailable,
    RefundResult,
    SignatureError,
    StartResult,
    UpdateKind,
    json_object,
    minor_units,
)

TOLERANCE_SECONDS = 300

# The 11 events the organizer subscribes to in the Stripe dashboard (docs/payments.md).
EVENTS = (
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.processing",
    "payment_intent.amount_capturable_updated",
    "charge.refunded",
    "refund.created",
)

# Payment intent events: one kind each, amount from the named field.
INTENT_KINDS = {
    "payment_intent.succeeded": (UpdateKind.SUCCEEDED, "amount_received"),
    "payment_intent.payment_failed": (UpdateKind.FAILED, None),
    "payment_intent.canceled": (UpdateKind.CANCELED, None),
    "payment_intent.processing": (UpdateKind.PROCESSING, None),
    "payment_intent.amount_capturable_updated": (UpdateKind.AUTHORIZED, "amount_capturable"),
}


class StripeProvider(PaymentProvider):
    name = "stripe"
    label = gettext_lazy("Stripe")
    checkout_label = gettext_lazy("Card (Stripe)")
    methods = ("card",)
    credential_fields = {"secret_key": gettext_lazy("Secret key (sk_live_… or sk_test_…)")}
    environment_credentials = {"secret_key": "STRIPE_SECRET_KEY"}
    environment_webhook_secret = "STRIPE_WEBHOOK_SECRET"
    webhook_secret_help = gettext_lazy("The endpoint's signing secret (whsec_…) from Stripe's dashboard.")

    @classmethod
    def dashboard_link(cls, reference: str) -> str | None:
        if not reference:
            return None
        mode = "test/" if "_test_" in reference else ""
        if reference.startswith("pi_"):
            return f"https://dashboard.stripe.com/{mode}payments/{quote(reference)}"
        return f"https://dashboard.stripe.com/{mode}search?{urlencode({'query': reference})}"

    def _client(self) -> stripe.StripeClient:
        from django.conf import settings

        # RequestsClient: one HTTP stack for every provider, with our timeout; no silent retries.
        return stripe.StripeClient(
            self.credential("secret_key"), max_network_retries=0, base_addresses={"api": settings.STRIPE_API_BASE},
            http_client=stripe.RequestsClient(timeout=settings.PAYMENT_PROVIDER_TIMEOUT),
        )

    def check_credentials(self) -> str:
        """Reads the account's balance (GET /v1/balance): the cheapest call a secret key must
        be allowed to make. A refused key says why, in Stripe's words."""
        try:
            self._client().v1.balance.retrieve()
        except stripe.AuthenticationError as exc:
            return gettext("Stripe refused this secret key: %(reason)s") % {
                "reason": exc.user_message or gettext("it is not a valid key")}
        except stripe.PermissionError as exc:
            return gettext("This key may not read the account (a restricted key?): %(reason)s") % {
                "reason": exc.user_message or type(exc).__name__}
        except stripe.StripeError as exc:
            return gettext("Stripe could not be asked whether this key works (%(reason)s). Try saving again.") % {
                "reason": exc.user_message or type(exc).__name__}
        return ""

    def test_mode(self) -> bool | None:
        key = str(self.config.credentials.get("secret_key") or "")
        return ("_test_" in key) if key else None

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise ProviderUnavailable(f"stripe: {what}: {exc.user_message or type(exc).__name__}") from exc
        except stripe.APIError as exc:
            raise ProviderUnavailable(f"stripe: {what}: {type(exc).__name__}") from exc
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe: {what}: {exc.user_message or type(exc).__name__}") from exc

    # --- Paying -----------------------------------------------------------------------
    def start(self, payment, session, *, return_url, cancel_url, method="", phone=""):
        ours = {"checkout_session": session.public_id, "payment": payment.public_id}
        line_items = [
            {
                "quantity": item.quantity,
                "price_data": {
                    "currency": session.currency.lower(),
                    "unit_amount": item.unit_amount,  # after the promo code's discount
                    "product_data": {"name": f"{session.event.name}: {item.ticket_type.name}"[:250]},
                },
            }
            for item in session.line_items.select_related("ticket_type")
        ]
        params = {
            "mode": "payment",
            "client_reference_id": session.public_id,
            "metadata": ours,
            "payment_intent_data": {"metadata": ours},
            "line_items": line_items,
            "success_url": return_url,
            "cancel_url": cancel_url,
        }
        if session.customer_email:
            params["customer_email"] = session.customer_email
        # Stripe's page closes when our hold ends (Stripe accepts 30 minutes to 24 hours), so
        # few payments arrive after the tickets were released.
        earliest = timezone.now() + timedelta(minutes=31)
        params["expires_at"] = int(max(session.expires_at, earliest).timestamp())
        created = _as_dict(self._call("create checkout session", self._client().v1.checkout.sessions.create,
                                      params=params, options={"idempotency_key": f"ievents-{payment.public_id}"}))
        if not created.get("url") or not created.get("id"):
            raise ProviderError("stripe: checkout session has no URL")
        return StartResult(provider_reference=created["id"], redirect_url=created["url"], method="card")

    def confirm(self, payment):
        if not payment.provider_reference:
            return None
        found = self._call("retrieve checkout session", self._client().v1.checkout.sessions.retrieve,
                           payment.provider_reference)
        return _from_checkout_session("checkout.session.completed", _as_dict(found))

    # --- Refunds (Refunds API) ----------------------------------------------------------
    def can_refund(self, payment):
        return bool(payment.provider_reference)

    def refund(self, payment, amount, *, key):
        """``POST /v1/refunds`` for the checkout session's payment intent, with our refund's
        key as Stripe's idempotency key: the same refund asked twice is made once."""
        client = self._client()
        found = _as_dict(self._call("retrieve checkout session", client.v1.checkout.sessions.retrieve,
                                    payment.provider_reference))
        intent = found.get("payment_intent")
        intent = intent.get("id") if isinstance(intent, dict) else intent
        if not isinstance(intent, str) or not intent:
            raise ProviderError("stripe: this payment has no payment intent to refund")
        made = _as_dict(self._call("create refund", client.v1.refunds.create, params={
            "payment_intent": intent, "amount": amount, "metadata": {"refund": key},
        }, options={"idempotency_key": f"ievents-refund-{key}"}))
        status = made.get("status")
        if status in ("failed", "canceled"):
            raise ProviderError(f"stripe: the refund {status} ({made.get('failure_reason') or 'no reason given'})")
        return RefundResult(str(made.get("id") or ""), "succeeded" if status == "succeeded" else "pending")

    # --- Cancelling (``POST /v1/checkout/sessions/{id}/expire``) ------------------------
    def can_cancel(self, payment):
        return bool(payment.provider_reference)

    def cancel(self, payment):
        """Expire the Checkout Session: its page stops taking payment. Stripe refuses a
        session already complete (paid): a ``ProviderError``, and that money is flagged."""
        self._call("expire checkout session", self._client().v1.checkout.sessions.expire, payment.provider_reference)

    # --- Webhooks ---------------------------------------------------------------------
    def verify_webhook(self, request: InboundRequest) -> None:
        secret = self.require_secret()
        try:
            stripe.WebhookSignature.verify_header(
                request.body, request.headers.get("stripe-signature"), secret, tolerance=TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            raise SignatureError(str(exc).split(". ")[0]) from exc
        except UnicodeDecodeError as exc:
            raise SignatureError("body is not UTF-8") from exc
        # The library refuses only old timestamps. A signature dated in the future would stay
        # replayable for longer than the tolerance: refuse it as the Standard Webhooks rule does.
        if _signed_at(request.headers.get("stripe-signature", "")) > time.time() + TOLERANCE_SECONDS:
            raise SignatureError("Timestamp is too far in the future")

    def parse_webhook(self, request: InboundRequest) -> ParsedWebhook:
        event = json_object(request.body)
        event_id, event_type = event.get("id"), event.get("type")
        obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(obj, dict):
            raise MalformedWebhook("not a Stripe event: id, type and data.object are required")
        try:
            update = self._update_for(event_type, obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedWebhook(f"{event_type}: unexpected object: {exc}") from exc
        return ParsedWebhook(event_id=event_id, type=event_type, updates=[update] if update else [])

    def _update_for(self, event_type: str, obj: dict) -> PaymentUpdate | None:
        if event_type.startswith("checkout.session."):
            return _from_checkout_session(event_type, obj)
        if event_type in INTENT_KINDS:
            kind, amount_field = INTENT_KINDS[event_type]
            return PaymentUpdate(
                kind, session_public_id=_session_id(obj),
                amount=minor_units(obj[amount_field]) if amount_field else None,
                currency=str(obj.get("currency") or ""), detail=f"stripe {event_type} {obj.get('id', '')}",
            )
        if event_type == "charge.refunded":
            return self._from_charge(obj, event_type)
        if event_type == "refund.created":
            # A refund names its charge but neither our session nor the total refunded so
            # far; the charge knows both, so we ask Stripe for it.
            charge_id = obj["charge"]
            if not isinstance(charge_id, str):
                raise ValueError("refund without a charge id")
            charge = self._call("retrieve charge", self._client().v1.charges.retrieve, charge_id)
            return self._from_charge(_as_dict(charge), event_type)
        return None  # an event we did not subscribe to: acknowledged and ignored

    def _from_charge(self, charge: dict, event_type: str) -> PaymentUpdate:
        refunded, amount = minor_units(charge["amount_refunded"]), minor_units(charge["amount"])
        kind = UpdateKind.REFUNDED if refunded >= amount else UpdateKind.PARTIALLY_REFUNDED
        session_id = _session_id(charge)
        if not session_id and isinstance(charge.get("payment_intent"), str):
            # Our id is certain on the payment intent (we set payment_intent_data.metadata).
            intent = self._call("retrieve payment intent", self._client().v1.payment_intents.retrieve,
                                charge["payment_intent"])
            session_id = _session_id(_as_dict(intent))
        return PaymentUpdate(kind, session_public_id=session_id, amount=refunded,
                             currency=str(charge.get("currency") or ""), detail=f"stripe {event_type} {charge.get('id', '')}")


def _as_dict(obj) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _session_id(obj: dict) -> str:
    metadata = obj.get("metadata") or {}
    return str(obj.get("client_reference_id") or metadata.get("checkout_session") or "")


def _from_checkout_session(event_type: str, obj: dict) -> PaymentUpdate | None:
    session_id = _session_id(obj)
    detail = f"stripe {event_type} {obj.get('id', '')}"
    common = {"session_public_id": session_id, "provider_reference": str(obj.get("id") or ""), "detail": detail}
    if event_type == "checkout.session.expired":
        return PaymentUpdate(UpdateKind.EXPIRED, **common)
    if event_type == "checkout.session.async_payment_failed":
        return PaymentUpdate(UpdateKind.FAILED, **common)
    payment_status = obj.get("payment_status")
    if event_type == "checkout.session.async_payment_succeeded" or payment_status in ("paid", "no_payment_required"):
        if payment_status not in ("paid", "no_payment_required"):
            return None
        return PaymentUpdate(UpdateKind.SUCCEEDED, amount=minor_units(obj["amount_total"]),
                             currency=str(obj.get("currency") or ""), **common)
    if event_type == "checkout.session.completed" and obj.get("status") == "complete":
        return PaymentUpdate(UpdateKind.PROCESSING, **common)  # an async method: money to follow
    if obj.get("status") == "expired":
        return PaymentUpdate(UpdateKind.EXPIRED, **common)
    return None  # still open: nothing to tell


def _signed_at(header: str) -> int:
    """The ``t=`` of a ``Stripe-Signature`` header the library has already verified."""
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            return int(value)
    raise SignatureError("no timestamp in Stripe-Signature")
