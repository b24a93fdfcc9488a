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
import logging
import re
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from .base import (
    InboundRequest,
    MalformedWebhook,
    ParsedWebhook,
    PaymentProvider,
    PaymentUpdate,
    ProviderError,
    RefundResult,
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
from .provider_http import call_json

log = logging.getLogger(__name__)

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
    label = gettext_lazy("Easypay")
    checkout_label = gettext_lazy("Multibanco or MB WAY (Easypay)")
    methods = ("multibanco", "mbway")
    credential_fields = {"account_id": gettext_lazy("Account ID"), "api_key": gettext_lazy("API key")}
    environment_credentials = {"account_id": "EASYPAY_ACCOUNT_ID", "api_key": "EASYPAY_API_KEY"}
    environment_webhook_secret = "EASYPAY_WEBHOOK_SECRET"
    webhook_secret_help = gettext_lazy("A long random secret of your choosing (letters and digits); it is the password in the "
                           "notification URL you give Easypay. If Easypay refuses a URL with a password, end the URL "
                           "with ?secret=<your webhook secret> instead.")
    api_base_setting = "EASYPAY_API_BASE"

    @classmethod
    def webhook_url(cls, organization) -> str:
        """The secret as the URL's password: Easypay sends it as HTTP Basic authentication,
        in no request line and so in no access log (``?secret=`` works too, masked in ours)."""
        parts = urlsplit(super().webhook_url(organization))
        return urlunsplit(parts._replace(netloc=f"easypay:<your webhook secret>@{parts.netloc}"))

    def test_mode(self) -> bool | None:
        return ".test." in self._url("/")  # Easypay's test API: api.test.easypay.pt

    def _headers(self) -> dict:
        return {"AccountId": self.credential("account_id"), "ApiKey": self.credential("api_key")}

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
        answer = call_json(self.name, "POST", self._url("/single"), headers=self._headers(), json_body=body)
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
        single = call_json(self.name, "GET", self._url(f"/single/{easypay_id}"), headers=self._headers())
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
        """Any of Easypay's three notifications (the organizer may configure any of the URLs):

        - generic ``{id, key, type, status, messages, date}``: ``id`` is the resource that
          changed, a payment's, or a refund's or void's for those types;
        - authorisation and transaction ``{id, value, currency, key, method, customer,
          account, transaction: {id, key, …}}``: ``id`` is the payment's.

        None is signed, so none is believed: the payment is found among ours (by Easypay's
        id, or by the ``key`` we sent when creating it) and its state fetched from the API.
        A notification about anything that is not ours is acknowledged and logged, so
        Easypay does not send it again for days.
        """
        note = json_object(request.body)
        easypay_id, key = note.get("id"), note.get("key")
        if not isinstance(easypay_id, str) or not PAYMENT_ID.fullmatch(easypay_id):
            raise MalformedWebhook("an Easypay notification needs the id of what it is about")  # used in URL paths
        key = key if isinstance(key, str) else ""
        kind, event_id, note_type = _notification_kind(note, easypay_id)
        if kind == "generic" and note["type"] in RESOURCE_TYPES_NOT_PAYMENTS:
            update = self._refund_news(easypay_id, key, note["type"], note["status"])
        else:
            payment_id = self._our_payment_id(easypay_id, key)
            update = None if payment_id is None else self.fetch_update(
                payment_id, detail=f"easypay {note_type}, confirmed by the API")
            if payment_id is None:
                log.info("easypay %s notification about %s is not about a payment of ours: acknowledged",
                         kind, easypay_id)
        return ParsedWebhook(event_id=event_id[:200], type=note_type[:100], updates=[update] if update else [])

    def _our_payment_id(self, easypay_id: str, key: str) -> str | None:
        """Easypay's id of our payment this notification is about (this organization's, when
        it came with an organization's secret), or None."""
        from .models import Payment

        found = Payment.objects.filter(provider=self.name).filter(
            Q(provider_reference=easypay_id) | Q(public_id=key or easypay_id))
        if self.config.organization_id is not None:
            found = found.filter(session__organization_id=self.config.organization_id)
        return found.exclude(provider_reference="").values_list("provider_reference", flat=True).first()

    def _refund_news(self, easypay_id: str, key: str, note_type: str, status: str) -> PaymentUpdate | None:
        """A refund's (or void's) notification: its ``id`` is the refund's. One we made from the
        admin is already recorded: the update names it (``payments.refunds.already_recorded``
        then changes nothing). Anything else is not ours to act on."""
        from .models import Refund

        found = Refund.objects.filter(provider=self.name).filter(
            Q(provider_reference=easypay_id) | Q(public_id=key or easypay_id)).select_related("session")
        if self.config.organization_id is not None:
            found = found.filter(session__organization_id=self.config.organization_id)
        refund = found.first()
        if refund is None:
            log.info("easypay %s notification %s (%s) is not about a refund we made: acknowledged",
                     note_type, easypay_id, status)
            return None
        session = refund.session
        kind = UpdateKind.REFUNDED if session.amount_refunded >= session.amount_paid else UpdateKind.PARTIALLY_REFUNDED
        return PaymentUpdate(kind, session_public_id=session.public_id, provider_reference=refund.provider_reference,
                             detail=f"easypay {note_type}/{status} {easypay_id}")

    # --- Cancelling (``DELETE /single/{id}``) ---------------------------------------------
    def can_cancel(self, payment):
        return bool(payment.provider_reference) and bool(PAYMENT_ID.fullmatch(payment.provider_reference))

    def cancel(self, payment):
        """Easypay's ``DELETE /single/{id}`` cancels a Multibanco reference and voids an MB WAY
        authorisation; it answers ``204 No Content``."""
        call_json(self.name, "DELETE", self._url(f"/single/{payment.provider_reference}"), headers=self._headers(),
                  empty_ok=True)

    # --- Refunds (``POST /refund/{capture id}``) -------------------------------------------
    def can_refund(self, payment):
        return bool(payment.provider_reference)

    def refund(self, payment, amount, *, key):
        """Easypay refunds a capture: the payment's paid capture is found with
        ``GET /single/{id}``, then ``POST /refund/{capture id}`` with ``{transaction_key,
        value}`` answers ``201 {status: "ok", id}``, the refund's id (its later notification
        carries that id, and our key as ``key``)."""
        single = call_json(self.name, "GET", self._url(f"/single/{payment.provider_reference}"), headers=self._headers())
        captures = [t for t in (single.get("transactions") or []) if isinstance(t, dict) and t.get("id")]
        if not captures:
            raise ProviderError("easypay: the payment has no capture to refund")
        capture_id = str(captures[-1]["id"])
        if not PAYMENT_ID.fullmatch(capture_id):
            raise ProviderError("easypay: the capture id is not an id")
        answer = call_json(self.name, "POST", self._url(f"/refund/{capture_id}"), headers=self._headers(), json_body={
            "transaction_key": key, "value": float(to_major_units(amount)),
        })
        if answer.get("status") != "ok" or not answer.get("id"):
            raise ProviderError(f"easypay: refund refused: {str(answer.get('message'))[:200]}")
        return RefundResult(str(answer["id"]))


# Generic notifications whose ``id`` is not a payment's.
RESOURCE_TYPES_NOT_PAYMENTS = ("refund", "void")


def _notification_kind(note: dict, easypay_id: str) -> tuple[str, str, str]:
    """(kind, event id, type) of a notification: generic, transaction or authorisation.

    Notifications have no id of their own: one (resource, type, status, date) is one event.
    """
    if isinstance(note.get("transaction"), dict):
        transaction_id = note["transaction"].get("id")
        return "transaction", f"{easypay_id}:transaction:{transaction_id}", "transaction"
    note_type, status = note.get("type"), note.get("status")
    if note_type is not None or status is not None:
        if not all(isinstance(v, str) and v for v in (note_type, status)):
            raise MalformedWebhook("an Easypay generic notification needs id, type and status")
        return "generic", f"{easypay_id}:{note_type}:{status}:{note.get('date', '')}", f"{note_type}.{status}"
    if "value" in note and ("method" in note or "authorisation" in note):
        return "authorisation", f"{easypay_id}:authorisation:{note.get('expiration_time', '')}", "authorisation"
    raise MalformedWebhook("not an Easypay notification: no type and status, no transaction, no value")


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

