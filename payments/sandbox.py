"""The sandbox provider: a payment page of our own with two buttons, so a whole purchase
works with no account anywhere. Its webhooks are Standard Webhooks, signed with the
organization's sandbox webhook secret."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .base import (
    InboundRequest,
    MalformedWebhook,
    ParsedWebhook,
    PaymentProvider,
    PaymentUpdate,
    RefundResult,
    SignatureError,
    StartResult,
    UpdateKind,
)

OUTCOME_KEY = "sandbox_outcome"


class SandboxProvider(PaymentProvider):
    name = "sandbox"
    label = gettext_lazy("Sandbox (test payments)")
    checkout_label = gettext_lazy("Sandbox (test payment)")
    methods = ("card",)
    webhook_secret_help = gettext_lazy("A Standard Webhooks secret (whsec_…) for simulated webhooks.")
    has_webhook_url = False  # nothing outside sends its webhooks

    def test_mode(self) -> bool | None:
        return True  # it never takes real money

    def start(self, payment, session, *, return_url, cancel_url, method="", phone=""):
        return StartResult(
            provider_reference=payment.public_id,
            redirect_url=reverse("payments:sandbox_page", args=[payment.public_id]),
            method="card",
        )

    def confirm(self, payment):
        outcome = payment.instructions.get(OUTCOME_KEY)
        if outcome == "success":
            return PaymentUpdate(UpdateKind.SUCCEEDED, session_public_id=payment.session.public_id,
                                 provider_reference=payment.provider_reference, amount=payment.amount,
                                 currency=payment.currency, detail="sandbox: simulated success")
        if outcome == "failure":
            return PaymentUpdate(UpdateKind.FAILED, session_public_id=payment.session.public_id,
                                 provider_reference=payment.provider_reference, detail="sandbox: simulated failure")
        return None

    def can_refund(self, payment):
        return True

    def refund(self, payment, amount, *, key):
        """Test money goes back at once."""
        return RefundResult(f"sbx_{key}")

    def can_cancel(self, payment):
        return True

    def cancel(self, payment):
        """A test payment page simply stops taking payment."""

    def verify_webhook(self, request: InboundRequest) -> None:
        if not self.config.webhook_secret:
            raise SignatureError("no sandbox webhook secret is configured")
        try:
            # Verify only: the body is parsed once, by parse_webhook, where a bad one is malformed.
            Webhook(self.config.webhook_secret).verify(request.body, request.headers, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed header
            raise SignatureError(str(exc)) from exc

    def parse_webhook(self, request: InboundRequest) -> ParsedWebhook:
        import json

        try:
            body = json.loads(request.body)
            kind = UpdateKind(body["type"])
            data = body.get("data") or {}
            update = PaymentUpdate(
                kind, session_public_id=str(data.get("session", "")),
                provider_reference=str(data.get("payment", "")),
                amount=int(data["amount"]) if data.get("amount") is not None else None,
                currency=str(data.get("currency", "")), detail="sandbox webhook",
            )
            return ParsedWebhook(event_id=str(body["id"]), type=kind.value, updates=[update])
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: a nested "[[[…" bomb
            raise MalformedWebhook(f"not a sandbox event: {exc}") from exc
