"""Easypay (API 2.0): Multibanco references and MB WAY, by single payments.

``POST /single`` creates the payment; ``GET /single/{id}`` tells its truth. Easypay's
generic notification (``{id, key, type, status, messages, date}``) is not signed, so we
never act on what it says: it is accepted only when it carries the organization's
notification secret (Easypay lets the merchant register any URL, so the secret is part of
the URL we give them, as its password: ``https://easypay:<secret>@…/api/webhooks/easypay/{org}``,
sent as HTTP Basic authentication and so written in no request line or access log;
``?secret=…`` and an ``X-Easypay-Secret`` header are accepted too), and then it is only a
hint to fetch the payment with ``AccountId``/``ApiKey``. The amount we act on is the
amount Easypay says was paid, which for a Multibanco reference can differ from the amount
asked: ``record_payment_succeeded`` reconciles it against the order.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .base import (
    InboundRequest,
    MalformedWebhook,
    ParsedWebhook,
    PaymentProvider,
    PaymentUpdate,
    ProviderError,
    SignatureError,
    StartResult,
    UpdateKind,
    deadline_text,
    json_object,
    normalize_phone,
    secrets_match,
    to_major_units,
    to_minor_units,
)

PAYMENT_ID = re.compile(r"[0-9A-Za-z-]{1,64}")

# Easypay's method codes, and ours.
METHODS = {"multibanco": "mb", "mbway": "mbw"}

# ``payment_status`` of a single payment → what it means for us (``pending``: nothing yet).
STATUS_KINDS = {
    "paid": UpdateKind.SUCCEEDED,
    "authorised": UpdateKind.AUTHORIZED,
    "failed": UpdateKind.FAILED,
    "error": UpdateKind.FAILED,
    "deleted": UpdateKind.CANCELED,
    "voided": UpdateKind.CANCELED,
}


class EasypayProvider(PaymentProvider):
    name = "easypay"
    label = "Multibanco or MB WAY (Easypay)"
    methods = ("multibanco", "mbway")

    def _headers(self) -> dict:
        return {"AccountId": self.credential("account_id"), "ApiKey": self.credential("api_key")}

    def _url(self, path: str) -> str:
        base = self.config.credentials.get("api_base") or settings.EASYPAY_API_BASE
        return base.rstrip("/") + path

    def start(self, payment, session, *, return_url, cancel_url, method="", phone=""):
        method = method or ("mbway" if phone else "multibanco")
        if method not in METHODS:
            raise ProviderError(f"easypay: unsupported method {method!r}")
        deadline = timezone.now() + timedelta(hours=settings.MULTIBANCO_DEADLINE_HOURS)
        body = {
            "key": payment.public_id,
            "type": "sale",
            "method": METHODS[method],
            "value": float(to_major_units(payment.amount)),
            "currency": payment.currency,
            "customer": {"name": session.customer_name[:100], "email": session.customer_email, "key": session.public_id},
            "capture": {"transaction_key": payment.public_id, "descriptive": session.event.name[:200]},
        }
        if method == "mbway":
            body["customer"].update(phone=normalize_phone(phone), phone_indicative="+351")
        else:
            body["expiration_time"] = timezone.localtime(deadline).strftime("%Y-%m-%d %H:%M")
        answer = self.call_api("POST", self._url("/single"), headers=self._headers(), json_body=body)
        if answer.get("status") != "ok" or not answer.get("id"):
            raise ProviderError(f"easypay: payment not created: {str(answer.get('message'))[:200]}")
        instructions = {"method": method}
        if method == "multibanco":
            found = answer.get("method") or {}
            if not found.get("entity") or not found.get("reference"):
                raise ProviderError("easypay: no Multibanco entity/reference in the answer")
            instructions.update(entity=str(found["entity"]), reference=str(found["reference"]),
                                deadline=deadline_text(deadline), deadline_at=deadline.isoformat())
        return StartResult(provider_reference=str(answer["id"]), method=method, instructions=instructions)

    def confirm(self, payment):
        if not payment.provider_reference:
            return None
        return self.fetch_update(payment.provider_reference, detail="easypay: checked on return")

    def fetch_update(self, easypay_id: str, *, detail: str) -> PaymentUpdate | None:
        """What Easypay's API says about a payment: the only source we act on."""
        single = self.call_api("GET", self._url(f"/single/{easypay_id}"), headers=self._headers())
        if not isinstance(single, dict):
            raise ProviderError("easypay: payment details are not an object")
        kind = STATUS_KINDS.get(str(single.get("payment_status", "")))
        if kind is None:
            return None
        amount = None
        if kind == UpdateKind.SUCCEEDED:
            amount = paid_amount(single)
        return PaymentUpdate(kind, provider_reference=str(single.get("id") or easypay_id), amount=amount,
                             currency=str(single.get("currency") or ""), detail=detail)

    def verify_webhook(self, request: InboundRequest) -> None:
        secret = self.require_secret()
        given = (basic_auth_password(request.headers.get("authorization", ""))
                 or request.headers.get("x-easypay-secret") or request.query.get("secret"))
        if not given:
            raise SignatureError("no notification secret (HTTP Basic password, X-Easypay-Secret or ?secret=)")
        if not secrets_match(given, secret):
            raise SignatureError("wrong notification secret")

    def parse_webhook(self, request: InboundRequest) -> ParsedWebhook:
        note = json_object(request.body)
        easypay_id, note_type, status = note.get("id"), note.get("type"), note.get("status")
        if not all(isinstance(v, str) and v for v in (easypay_id, note_type, status)):
            raise MalformedWebhook("an Easypay notification needs id, type and status")
        if not PAYMENT_ID.fullmatch(easypay_id):
            raise MalformedWebhook("an Easypay payment id is a UUID")  # it goes into the API's URL path
        # The notification has no id of its own: one (payment, type, status) is one event.
        event_id = f"{easypay_id}:{note_type}:{status}:{note.get('date', '')}"[:200]
        update = self.fetch_update(easypay_id, detail=f"easypay {note_type}/{status}, confirmed by the API")
        return ParsedWebhook(event_id=event_id, type=f"{note_type}.{status}"[:100], updates=[update] if update else [])


def basic_auth_password(authorization: str) -> str:
    """The password of an ``Authorization: Basic …`` header ("" for anything else): the
    secret of a notification URL written ``https://easypay:<secret>@host/…``."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def paid_amount(single: dict) -> int:
    """The money that actually arrived: the sum of the captures' ``values.paid``, else ``value``."""
    paid = [t.get("values", {}).get("paid") for t in single.get("transactions") or [] if isinstance(t, dict)]
    paid = [p for p in paid if p not in (None, "")]
    try:
        return sum(to_minor_units(p) for p in paid) if paid else to_minor_units(single["value"])
    except (KeyError, ValueError) as exc:
        raise ProviderError(f"easypay: unreadable paid amount: {exc}") from exc

