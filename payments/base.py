"""The interface every payment provider implements, and what they share.

A provider turns our ``Payment`` into its own (``start``), asks after it when the
attendee returns (``confirm``), and turns its webhooks into ``PaymentUpdate``s
(``verify_webhook`` then ``parse_webhook``). What happens to the checkout because of an
update is decided in one place, ``payments.services.apply_update``, never in a provider.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils.translation import gettext

if TYPE_CHECKING:
    from checkout.models import CheckoutSession

    from .models import Payment


class ProviderError(Exception):
    """The provider could not do what we asked (network, API error, misconfiguration)."""


class ProviderNotConfigured(ProviderError):
    """Neither the organization nor the environment has credentials for this provider."""


class PaymentDetailsRejected(ProviderError):
    """What the attendee gave cannot be used (an MB WAY phone number, say); the message says why."""


class ProviderUnavailable(ProviderError):
    """The provider's API could not be reached or failed on its side (timeout, 5xx, 429).

    Transient: a webhook that needed the API answers 5xx so the provider sends it again.
    """


class RefundNotSupported(ProviderError):
    """The provider has no refund API for this payment (a paid Multibanco reference)."""


class CancelNotSupported(ProviderError):
    """The provider has no API to cancel this open payment (an Ifthenpay Multibanco reference)."""


class SignatureError(Exception):
    """An inbound webhook failed verification. Nothing it says may be trusted."""


class MalformedWebhook(Exception):
    """An inbound webhook was verified (or needs none) but cannot be understood."""


class UpdateKind(StrEnum):
    """What a provider told us about a payment, in our words."""

    PROCESSING = "processing"
    AUTHORIZED = "authorized"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # authorization declined: the attendee may try again
    CAPTURE_FAILED = "capture_failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


@dataclass(frozen=True)
class PaymentUpdate:
    """A normalised fact about one payment. Found by session id or provider reference."""

    kind: UpdateKind
    session_public_id: str = ""
    provider_reference: str = ""
    amount: int | None = None  # minor units actually paid; for refunds, the total refunded so far
    currency: str = ""
    detail: str = ""


@dataclass(frozen=True)
class InboundRequest:
    """An inbound webhook as received, before anything trusts it."""

    method: str
    body: bytes
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]


@dataclass(frozen=True)
class ParsedWebhook:
    event_id: str
    type: str
    updates: list[PaymentUpdate] = field(default_factory=list)


@dataclass(frozen=True)
class StartResult:
    """Where the attendee goes next: a URL to redirect to, or instructions to show."""

    provider_reference: str = ""
    redirect_url: str = ""
    method: str = ""
    instructions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    """What the provider said to a refund: its id there, and whether the money went back
    already (``succeeded``) or is on its way (``pending``)."""

    provider_reference: str
    status: str = "succeeded"


@dataclass(frozen=True)
class ProviderConfig:
    """Credentials for one provider: the tenant's own, or the environment's."""

    organization_id: int | None
    credentials: dict
    webhook_secret: str
    from_environment: bool


class PaymentProvider:
    """Base class. Subclasses declare their facts below and implement the four methods."""

    name: ClassVar[str] = ""  # the code in our rows and in its webhook URL: "stripe"
    label: ClassVar[str] = ""  # its name for organizers, the model fields' choices: "Stripe"
    checkout_label: ClassVar[str] = ""  # the choice the attendee reads: "Card (Stripe)"
    methods: ClassVar[tuple[str, ...]] = ()
    # The credentials an organization enters in the admin, with the form's label for each.
    credential_fields: ClassVar[dict[str, str]] = {}
    # A provider that takes payments with any one of these credentials (empty: it needs
    # every credential it declares before it may be enabled).
    any_one_credential_of: ClassVar[tuple[str, ...]] = ()
    # The platform's fallback (org ``_``, or an organization without its own): credential
    # name → setting, and the setting holding the webhook secret.
    environment_credentials: ClassVar[dict[str, str]] = {}
    environment_webhook_secret: ClassVar[str] = ""
    webhook_secret_help: ClassVar[str] = ""
    # Appended to our webhook URL: what the organizer must add when registering it.
    webhook_url_suffix: ClassVar[str] = ""
    # False when no server of the provider's sends its webhooks (the sandbox's are our own
    # tests'): the admin then shows no URL to register and warns of no missing secret.
    has_webhook_url: ClassVar[bool] = True
    # The setting with the address of the provider's JSON API (``_url``; see ``provider_http``).
    api_base_setting: ClassVar[str] = ""

    def __init__(self, config: ProviderConfig):
        self.config = config

    def check_credentials(self) -> str:
        """Whether the provider accepts these credentials, asked with one cheap authenticated
        read when the organizer saves them: "" if it does (or the provider has no such read),
        else what is wrong, in words for the organizer (the provider's own reason included)."""
        return ""

    def test_mode(self) -> bool | None:
        """True when these credentials take test payments only, False for live ones, None
        when the credentials do not say."""
        return None

    @classmethod
    def environment_config(cls) -> ProviderConfig:
        """The fallback credentials from the environment; unset ones are left out."""
        from django.conf import settings

        credentials = {name: getattr(settings, setting) for name, setting in cls.environment_credentials.items()}
        secret = getattr(settings, cls.environment_webhook_secret) if cls.environment_webhook_secret else ""
        return ProviderConfig(organization_id=None, credentials={k: v for k, v in credentials.items() if v},
                              webhook_secret=secret, from_environment=True)

    @classmethod
    def webhook_url(cls, organization) -> str:
        """The exact URL to paste into the provider's dashboard."""
        from django.conf import settings
        from django.urls import reverse

        org = organization.public_id if organization else "_"
        return settings.PUBLIC_BASE_URL + reverse("inbound:provider_webhook", args=[cls.name, org]) + cls.webhook_url_suffix

    @classmethod
    def dashboard_link(cls, reference: str) -> str | None:
        """The payment with this reference on the provider's dashboard, if we can link to it."""
        return None

    def start(self, payment: Payment, session: CheckoutSession, *, return_url: str, cancel_url: str,
              method: str = "", phone: str = "") -> StartResult:
        raise NotImplementedError

    def confirm(self, payment: Payment) -> PaymentUpdate | None:
        """Ask the provider what became of the payment (sync-on-return)."""
        raise NotImplementedError

    def verify_webhook(self, request: InboundRequest) -> None:
        """Raise ``SignatureError`` unless the request provably comes from the provider."""
        raise NotImplementedError

    def parse_webhook(self, request: InboundRequest) -> ParsedWebhook:
        """Turn a verified request into updates; raise ``MalformedWebhook`` if it can't."""
        raise NotImplementedError

    # --- Refunds (payments.refunds decides when and how much) ----------------------------
    def can_refund(self, payment: Payment) -> bool:
        """True if the provider's API can give this payment's money back."""
        return False

    def refund(self, payment: Payment, amount: int, *, key: str) -> RefundResult:
        """Give ``amount`` (minor units) of ``payment`` back. ``key`` is ours for this refund
        (the provider's idempotency key, where it has one). Raises ``ProviderError``."""
        raise RefundNotSupported(f"{self.name}: no refund API for this payment")

    # --- Cancelling an open payment (an order canceled before its money arrived) --------
    def can_cancel(self, payment: Payment) -> bool:
        """True if the provider's API can stop this payment from being paid."""
        return False

    def cancel(self, payment: Payment) -> None:
        """Stop ``payment`` from being paid (a Checkout Session expired, a reference
        deleted). Raises ``ProviderError`` if the provider refuses (already paid, say)."""
        raise CancelNotSupported(f"{self.name}: no API to cancel this payment")

    def require_secret(self) -> str:
        """The webhook secret, or ``SignatureError``: with no secret nothing can be verified."""
        if not self.config.webhook_secret:
            raise SignatureError(f"no {self.name} webhook secret is configured for this organization or the environment")
        return self.config.webhook_secret

    def credential(self, name: str) -> str:
        value = str(self.config.credentials.get(name) or "")
        if not value:
            raise ProviderNotConfigured(f"{self.name}: {name} is not configured")
        return value

    def _url(self, path: str) -> str:
        """``path`` on the provider's API: the credentials' ``api_base`` if set, else the setting's."""
        from django.conf import settings

        base = self.config.credentials.get("api_base") or getattr(settings, self.api_base_setting)
        return base.rstrip("/") + path


# --- Shared helpers ----------------------------------------------------------------------
def secrets_match(given: str | None, expected: str) -> bool:
    """Compare a secret received from outside in constant time."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


# Larger than any ticket order, small enough for every integer column we store amounts in.
MAX_AMOUNT = 2_000_000_000


def minor_units(value: Any) -> int:
    """An amount a provider sent in minor units, checked: an int in [0, MAX_AMOUNT]."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not an amount: {value!r}")
    amount = int(value)
    if not 0 <= amount <= MAX_AMOUNT:
        raise ValueError(f"amount out of range: {amount}")
    return amount


def to_minor_units(value: Any) -> int:
    """``"25.00"``/``25``/``25.5`` (major units, as Portuguese providers send them) → cents.

    Raises ``ValueError`` for anything that is not a finite non-negative number.
    """
    try:
        amount = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite() or amount < 0 or amount * 100 > MAX_AMOUNT:
        raise ValueError(f"not an amount: {value!r}")
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def to_major_units(minor: int) -> str:
    """2500 → ``"25.00"``."""
    return f"{Decimal(minor) / 100:.2f}"


def json_object(body: bytes) -> dict:
    """Parse a verified body as a JSON object or raise ``MalformedWebhook``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedWebhook(f"body is not JSON: {exc}") from exc
    except RecursionError as exc:  # a signed "[[[[…" bomb: nested deeper than the parser goes
        raise MalformedWebhook("body is nested too deeply") from exc
    if not isinstance(data, dict):
        raise MalformedWebhook("body is not a JSON object")
    return data


def normalize_phone(phone: str) -> str:
    """A Portuguese mobile number as MB WAY wants it: nine digits starting with 9."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("351") and len(digits) == 12:
        digits = digits[3:]
    if len(digits) != 9 or not digits.startswith("9"):
        raise PaymentDetailsRejected(gettext("MB WAY needs a Portuguese mobile number: 9 digits, starting with 9."))
    return digits


def deadline_text(when) -> str:
    """A Multibanco deadline as the attendee reads it, in the site's time zone."""
    from django.utils import timezone

    return timezone.localtime(when).strftime("%Y-%m-%d %H:%M")
