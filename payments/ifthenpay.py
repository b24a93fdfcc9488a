"""Ifthenpay: Multibanco references and MB WAY.

Paying: ``POST /multibanco/reference/init`` (``mbKey``) returns an entity, a reference and
a ``RequestId``; ``POST /spg/payment/mbway`` (``mbWayKey``, ``mobileNumber`` as
``351#9…``) pushes the request to the attendee's phone and returns a ``RequestId``. An
MB WAY request can be re-checked with ``GET /spg/payment/mbway/status``.

The callback is a GET built from the URL template the merchant registers in Ifthenpay's
backoffice (docs/payments.md), carrying ``key`` (the anti-phishing key), ``orderId``,
``amount``, ``requestId``, ``entity``, ``reference`` and ``payment_datetime``. It is not
signed: the anti-phishing key, compared in constant time, is what authenticates it, and
the amount is reconciled against the order. 200 acknowledges; anything else makes
Ifthenpay call again.
"""

from __future__ import annotations

from django.conf import settings
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
    normalize_phone,
    secrets_match,
    to_major_units,
    to_minor_units,
)
from .provider_http import call_json

# MB WAY request status codes (Ifthenpay MB WAY API): anything else is still pending.
MBWAY_STATUS_KINDS = {
    "000": UpdateKind.SUCCEEDED,  # paid
    "020": UpdateKind.FAILED,  # refused by the attendee in the app
    "101": UpdateKind.FAILED,  # not confirmed in time: the attendee may try again
    "122": UpdateKind.FAILED,  # declined by the bank
}

CALLBACK_FIELDS = ("key", "orderId", "amount", "requestId", "entity", "reference", "payment_datetime")


class IfthenpayProvider(PaymentProvider):
    name = "ifthenpay"
    label = gettext_lazy("Ifthenpay")
    checkout_label = gettext_lazy("Multibanco or MB WAY (Ifthenpay)")
    methods = ("multibanco", "mbway")
    credential_fields = {"mb_key": gettext_lazy("Multibanco key (mbKey)"),
                         "mbway_key": gettext_lazy("MB WAY key (mbWayKey)"),
                         "backoffice_key": gettext_lazy("Backoffice key (for MB WAY refunds)")}
    any_one_credential_of = ("mb_key", "mbway_key")  # Multibanco, MB WAY or both; refunds are optional
    environment_credentials = {
        "mb_key": "IFTHENPAY_MB_KEY",
        "mbway_key": "IFTHENPAY_MBWAY_KEY",
        "entity": "IFTHENPAY_ENTITY",
        "sub_entity": "IFTHENPAY_SUB_ENTITY",
    }
    environment_webhook_secret = "IFTHENPAY_ANTI_PHISHING_KEY"
    webhook_secret_help = gettext_lazy("The anti-phishing key you agreed with Ifthenpay.")
    api_base_setting = "IFTHENPAY_API_BASE"
    # The callback template registered in Ifthenpay's backoffice (docs/payments.md).
    webhook_url_suffix = ("?key=[ANTI_PHISHING_KEY]&orderId=[ORDER_ID]&amount=[AMOUNT]&requestId=[REQUEST_ID]"
                          "&entity=[ENTITY]&reference=[REFERENCE]&payment_datetime=[PAYMENT_DATETIME]")

    def start(self, payment, session, *, return_url, cancel_url, method="", phone=""):
        method = method or ("mbway" if phone else "multibanco")
        order_id = order_id_for(payment)
        amount = to_major_units(payment.amount)
        description = session.event.name[:50]
        if method == "mbway":
            answer = call_json(self.name, "POST", self._url("/spg/payment/mbway"), json_body={
                "mbWayKey": self.credential("mbway_key"), "orderId": order_id, "amount": amount,
                "mobileNumber": f"351#{normalize_phone(phone)}", "email": session.customer_email,
                "description": description,
            })
            if str(answer.get("Status")) != "000" or not answer.get("RequestId"):
                raise ProviderError(f"ifthenpay: MB WAY request refused: {str(answer.get('Message'))[:200]}")
            return StartResult(provider_reference=str(answer["RequestId"]), method="mbway",
                               instructions={"method": "mbway", "order_id": order_id})
        if method != "multibanco":
            raise ProviderError(f"ifthenpay: unsupported method {method!r}")
        from datetime import timedelta

        from django.utils import timezone

        days = max(1, settings.MULTIBANCO_DEADLINE_HOURS // 24)
        deadline = timezone.now() + timedelta(days=days)
        answer = call_json(self.name, "POST", self._url("/multibanco/reference/init"), json_body={
            "mbKey": self.credential("mb_key"), "orderId": order_id, "amount": amount,
            "description": description, "clientEmail": session.customer_email, "expiryDays": days,
        })
        if str(answer.get("Status")) != "0" or not answer.get("Reference") or not answer.get("RequestId"):
            raise ProviderError(f"ifthenpay: reference not created: {str(answer.get('Message'))[:200]}")
        return StartResult(provider_reference=str(answer["RequestId"]), method="multibanco", instructions={
            "method": "multibanco", "order_id": order_id, "entity": str(answer.get("Entity", "")),
            "reference": str(answer["Reference"]), "deadline": deadline_text(deadline), "deadline_at": deadline.isoformat(),
        })

    def confirm(self, payment):
        """MB WAY can be asked; a Multibanco reference cannot (its callback is the news)."""
        if payment.method != "mbway" or not payment.provider_reference:
            return None
        answer = call_json(self.name, "GET", self._url("/spg/payment/mbway/status"), params={
            "mbWayKey": self.credential("mbway_key"), "requestId": payment.provider_reference,
        })
        kind = MBWAY_STATUS_KINDS.get(str(answer.get("Status")))
        if kind is None:
            return None
        return PaymentUpdate(kind, provider_reference=payment.provider_reference,
                             detail=f"ifthenpay MB WAY status {answer.get('Status')}")

    # --- Refunds: MB WAY only (a Multibanco reference has no refund API) ---------------
    def can_refund(self, payment):
        """MB WAY, once the organizer gave the backoffice key the refund API needs."""
        return (payment.method == "mbway" and bool(payment.provider_reference)
                and bool(self.config.credentials.get("backoffice_key")))

    def refund(self, payment, amount, *, key):
        """``POST /endpoint/payments/refund`` with the backoffice key and the MB WAY request
        id. Ifthenpay answers ``{"Code": 1}`` when the money went back; it has no refund id."""
        if not self.can_refund(payment):
            return super().refund(payment, amount, key=key)
        answer = call_json(self.name, "POST", self._url("/endpoint/payments/refund"), json_body={
            "backofficekey": self.credential("backoffice_key"), "requestId": payment.provider_reference,
            "amount": to_major_units(amount),
        })
        code = str(answer.get("Code"))
        if code == "-1":
            raise ProviderError("ifthenpay: not enough balance at Ifthenpay for this refund yet")
        if code != "1":
            raise ProviderError(f"ifthenpay: refund refused: {str(answer.get('Message'))[:200]}")
        return RefundResult("")

    def verify_webhook(self, request: InboundRequest) -> None:
        secret = self.require_secret()
        given = request.query.get("key")
        if not given:
            raise SignatureError("no anti-phishing key in the callback")
        if not secrets_match(given, secret):
            raise SignatureError("wrong anti-phishing key")

    def parse_webhook(self, request: InboundRequest) -> ParsedWebhook:
        query = request.query
        request_id = (query.get("requestId") or "").strip()
        if not request_id:
            raise MalformedWebhook("the callback has no requestId")
        if not request_id.isprintable() or len(request_id) > 100:
            raise MalformedWebhook("the callback's requestId is not an id")
        try:
            amount = to_minor_units(query.get("amount", ""))
        except ValueError as exc:
            raise MalformedWebhook(f"the callback's amount is unreadable: {exc}") from exc
        kind_of_payment = "multibanco" if query.get("reference") else "mbway"
        update = PaymentUpdate(
            UpdateKind.SUCCEEDED, provider_reference=request_id, amount=amount, currency="EUR",
            detail=f"ifthenpay {kind_of_payment} paid {query.get('payment_datetime', '')}"[:200],
        )
        # One payment is paid once: the request id is the event.
        return ParsedWebhook(event_id=request_id[:200], type=f"{kind_of_payment}.paid", updates=[update])


def order_id_for(payment) -> str:
    """Our order id at Ifthenpay: short (their field is limited), unique, ours."""
    return payment.public_id.removeprefix("pay_")[:15]
