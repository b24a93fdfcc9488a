"""The interface every payment provider implements, and what they share.

A provider turns our ``Payment`` into its own (``start``), asks after it when the
attendee returns (``confirm``), and turns its webhooks into ``PaymentUpdate``s
(``verify_webhook`` then ``parse_webhook``). What happens to the checkout because of an
update is decided in one place, ``payments.services.apply_update``, never in a provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from checkout.models import CheckoutSession

    from .models import Payment


class ProviderError(Exception):
    """The provider could not do what we asked (network, API error, misconfiguration)."""


class ProviderNotConfigured(ProviderError):
    """Neither the organization nor the environment has credentials for this provider."""


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
    amount: int | None = None  # minor units actually paid/refunded, when the provider says
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
class ProviderConfig:
    """Credentials for one provider: the tenant's own, or the environment's."""

    organization_id: int | None
    credentials: dict
    webhook_secret: str
    from_environment: bool


class PaymentProvider:
    """Base class. Subclasses set ``name`` and implement the four methods."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    methods: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ProviderConfig):
        self.config = config

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
