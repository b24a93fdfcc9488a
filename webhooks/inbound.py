"""Inbound provider webhooks: verify, record once, apply under the session's lock.

Routes (docs/api.md): ``POST|GET /api/webhooks/{provider}/{org}`` and
``POST /v1/webhooks/payments/{provider}?org={org}`` (with ``x-checkout-secret``).

The order of things is the security model:

1. the organization and provider must exist (else 404), the body must fit the cap (413);
2. the provider verifies the request with the organization's secret, or the environment's
   for org ``_`` or an organization without its own (``SignatureError`` → 400, recorded).
   The organization and its settings are kept per process for a few seconds
   (``payments.registry.inbound_route``); a request they refuse is verified again with
   fresh ones before it is refused;
3. only then is the body parsed (``MalformedWebhook`` → 400, recorded);
4. a copy of a delivery already recorded is counted on the first copy's row (``duplicates``,
   one UPDATE through the unique ``dedupe_key`` index: the lookup and the record in one
   statement) and answered 200 "duplicate"; otherwise the update is applied and a row with a
   unique ``dedupe_key`` and the outcome is inserted at the end of the same transaction, so
   of 50 copies arriving at once exactly one commits: the others wait (on the session's lock,
   or on the unique index), fail the insert, are rolled back whole, counted the same way and
   answer 200 "duplicate";
5. a transient failure (the provider's API is down, our database hiccups) rolls all of
   that back and answers 503, so the provider sends the event again.

Answers: 2xx for processed, duplicate and irrelevant events; 4xx when nothing may change;
5xx only when trying again can help.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from checkout.models import Source
from ievents.models import Organization
from payments import services as payments
from payments.base import (
    InboundRequest,
    MalformedWebhook,
    ParsedWebhook,
    PaymentProvider,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    SignatureError,
)
from payments.registry import PROVIDER_CLASSES, get_provider, inbound_route

from .models import InboundWebhook

log = logging.getLogger(__name__)

ENVIRONMENT_ORG = "_"
# Query parameters that carry a secret (Ifthenpay's anti-phishing key, our Easypay secret):
# never stored in the log.
SECRET_PARAMS = {"key", "secret"}
STORED_PAYLOAD_CHARS = 64 * 1024



class UnknownRoute(Exception):
    """No such provider or organization: 404, and nothing recorded against anyone."""


@dataclass(frozen=True)
class Received:
    """What we answer the provider, and the row that records it."""

    status: int
    outcome: str
    message: str = ""
    row: InboundWebhook | None = None

    def as_response(self) -> JsonResponse:
        return JsonResponse({"received": self.status < 400, "outcome": self.outcome, "message": self.message},
                            status=self.status)


# --- The service ----------------------------------------------------------------------
def receive(provider_name: str, org: str, request: InboundRequest) -> Received:
    """Handle one delivery from a provider. Raises ``UnknownRoute`` for 404s."""
    if provider_name not in PROVIDER_CLASSES:
        raise UnknownRoute(f"no provider {provider_name[:30]!r}")
    try:
        organization, provider = _verified(provider_name, org, request)
    except _Refused as refused:
        base = {"provider": provider_name, "organization": refused.organization, "payload": stored_payload(request)}
        row = InboundWebhook.objects.create(**base, verified=False, outcome=InboundWebhook.Outcome.REJECTED,
                                            error=storable(str(refused.error), 500))
        return Received(400, InboundWebhook.Outcome.REJECTED, "signature verification failed", row)
    base = {"provider": provider_name, "organization": organization, "payload": stored_payload(request)}
    return process_verified(provider, organization, request, base)


class _Refused(Exception):
    def __init__(self, organization: Organization | None, error: SignatureError):
        super().__init__(str(error))
        self.organization, self.error = organization, error


def _verified(provider_name: str, org: str, request: InboundRequest) -> tuple[Organization | None, PaymentProvider]:
    """The organization and its provider, once the request proved it comes from the provider.

    The organization and its settings are those this process keeps for a few seconds
    (``payments.registry.inbound_route``); a request they refuse is tried again with the
    rows read now, so a secret rotated in a moment ago is never refused.
    """
    if org == ENVIRONMENT_ORG:
        provider = get_provider(provider_name, None)
        try:
            provider.verify_webhook(request)
        except SignatureError as exc:
            raise _Refused(None, exc) from exc
        return None, provider
    route = inbound_route(provider_name, org)
    while True:
        if route is None:
            raise UnknownRoute(f"no organization {org[:60]!r}")
        provider = PROVIDER_CLASSES[provider_name](route.config)
        try:
            provider.verify_webhook(request)
        except SignatureError as exc:
            if route.kept:
                route = inbound_route(provider_name, org, fresh=True)
                continue
            raise _Refused(route.organization, exc) from exc
        return route.organization, provider


def process_verified(provider: PaymentProvider, organization: Organization | None, request: InboundRequest,
                     base: dict, *, reprocess_row: InboundWebhook | None = None) -> Received:
    """Parse a verified request and apply it once. ``reprocess_row``: an admin's manual retry."""
    provider_name = provider.name
    try:
        parsed = provider.parse_webhook(request)
    except MalformedWebhook as exc:
        return _record_failure(base, reprocess_row, InboundWebhook.Outcome.REJECTED, f"malformed: {exc}", 400)
    except (ProviderUnavailable, ProviderNotConfigured) as exc:
        return _record_failure(base, reprocess_row, InboundWebhook.Outcome.FAILED, str(exc), 503)
    except ProviderError as exc:  # the provider's API denies what the webhook claims
        return _record_failure(base, reprocess_row, InboundWebhook.Outcome.REJECTED, str(exc), 400)

    org_key = str(organization.pk) if organization else ENVIRONMENT_ORG
    event_id = storable(parsed.event_id, 200)
    dedupe_key = f"{provider_name}:{org_key}:{event_id}"[:300]
    fields = {**base, "verified": True, "event_id": event_id, "type": storable(parsed.type, 100)}
    try:
        if reprocess_row is None and _counted_duplicate(dedupe_key):
            return _DUPLICATE  # the common retry: one indexed UPDATE, nothing else
        applied = False
        try:
            with transaction.atomic():
                if reprocess_row is not None:
                    row = InboundWebhook.objects.select_for_update().get(pk=reprocess_row.pk)
                    row.outcome, row.session, row.error = _apply(parsed, organization, provider_name)
                    row.save(update_fields=["outcome", "session", "error"])
                else:
                    outcome, session, error = _apply(parsed, organization, provider_name)
                    applied = True
                    # The first copy's row, written once with its outcome as the transaction's
                    # last statement (issue 26: one statement fewer than inserting it first and
                    # updating it). A racing copy got this far too, having waited on the
                    # session's lock and changed nothing; its insert then fails the unique
                    # key, rolling back whatever it did, and it is counted as a duplicate.
                    row = InboundWebhook.objects.create(**fields, dedupe_key=dedupe_key, outcome=outcome,
                                                        session=session, error=error)
        except IntegrityError:
            # Our key taken by a racing copy that committed first (its row exists now): a
            # duplicate, counted on it. Any other unique key, or one met while applying, is a
            # failure like any database error (below).
            if applied and _counted_duplicate(dedupe_key):
                return _DUPLICATE
            raise
    except (ProviderUnavailable, DatabaseError) as exc:
        log.warning("inbound %s webhook %s failed, the provider will retry: %s", provider_name, parsed.event_id, exc)
        return _record_failure(fields, reprocess_row, InboundWebhook.Outcome.FAILED,
                               f"transient: {type(exc).__name__}: {exc}", 503)
    return Received(200, row.outcome, row.error, row)


_DUPLICATE = Received(200, InboundWebhook.Outcome.DUPLICATE, "already received")


def _counted_duplicate(dedupe_key: str) -> bool:
    """Whether a copy with this key was recorded, counting this one on its row if so.

    One statement through the unique index: the check and the record together. A first copy
    still in its transaction is not visible yet (0 rows), so its racing copy goes on to the
    insert, which waits on the unique index (``process_verified``).
    """
    return bool(InboundWebhook.objects.filter(dedupe_key=dedupe_key).update(
        duplicates=F("duplicates") + 1, last_duplicate_at=timezone.now()))


def _apply(parsed: ParsedWebhook, organization: Organization | None, provider_name: str) -> tuple:
    """Apply each update to its session (only this organization's, only this provider's
    payments). Returns (outcome, session, note)."""
    outcome, session, notes = InboundWebhook.Outcome.IGNORED, None, []
    if not parsed.updates:
        notes.append(f"{parsed.type}: nothing to do")
    for update in parsed.updates:
        # The payment and its session found, and the session locked, in one read (we are in
        # the webhook's transaction): apply_update then works on those rows as they are.
        payment = payments.find_payment(update, organization.pk if organization else None, provider_name)
        if payment is None:
            notes.append(f"{update.kind}: no session of this organization matches")
            continue
        session = payment.session
        result = payments.apply_update(session, update, source=Source.PROVIDER_WEBHOOK, provider=provider_name,
                                       locked=True, payment=payment)
        notes.append(f"{update.kind}: {result}")
        if result == "applied":
            outcome = InboundWebhook.Outcome.PROCESSED
    return outcome, session, storable("; ".join(notes), 500)


def _record_failure(fields: dict, row: InboundWebhook | None, outcome: str, error: str, status: int) -> Received:
    error = storable(error, 500)
    if row is not None:
        row.outcome, row.error = outcome, error[:500]
        row.save(update_fields=["outcome", "error"])
    else:
        fields = {k: v for k, v in fields.items() if k != "dedupe_key"}
        fields.setdefault("verified", True)
        row = InboundWebhook.objects.create(**fields, outcome=outcome, error=error[:500])
    message = "temporary failure, please retry" if status >= 500 else error[:200]
    return Received(status, outcome, message, row)


def reprocess(row: InboundWebhook) -> Received:
    """Run a recorded, verified delivery through parsing and the state machine again.

    For the organizer who fixed a misconfiguration, or to re-ask Easypay about a payment.
    Safe to repeat: ``apply_update`` never applies the same news twice.
    """
    if not row.verified:
        return Received(400, row.outcome, "only verified deliveries can be reprocessed", row)
    provider = get_provider(row.provider, row.organization)
    request = request_from_payload(row.payload)
    return process_verified(provider, row.organization, request, {"provider": row.provider,
                            "organization": row.organization, "payload": row.payload}, reprocess_row=row)


# --- What we store of a request ---------------------------------------------------------
def stored_payload(request: InboundRequest) -> str:
    """The body as text, capped; a bodyless callback as its query, secrets masked."""
    if request.body:
        return storable(request.body[:STORED_PAYLOAD_CHARS].decode("utf-8", errors="replace"))
    query = [(k, "***" if k in SECRET_PARAMS else v) for k, v in request.query.items()]
    return storable(("?" + urlencode(query))[:STORED_PAYLOAD_CHARS])


def storable(text: str, limit: int | None = None) -> str:
    """Remote text as a database text column takes it: no NUL (PostgreSQL refuses it), capped."""
    text = text.replace("\x00", "\ufffd")
    return text[:limit] if limit else text


def request_from_payload(payload: str) -> InboundRequest:
    if payload.startswith("?"):
        return InboundRequest("GET", b"", {}, dict(parse_qsl(payload[1:], keep_blank_values=True)))
    return InboundRequest("POST", payload.encode(), {}, {})


# --- Views ----------------------------------------------------------------------------
class BodyTooLarge(Exception):
    pass


def inbound_request(request) -> InboundRequest:
    """Read at most the cap: a provider never sends more, an attacker may."""
    limit = settings.INBOUND_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge
    body = request.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = {k: v for k, v in request.GET.items()}
    return InboundRequest(request.method, body, headers, query)


def _handle(request, provider: str, org: str) -> JsonResponse:
    try:
        inbound = inbound_request(request)
    except BodyTooLarge:
        return JsonResponse({"received": False, "outcome": "rejected", "message": "body too large"}, status=413)
    try:
        return receive(provider, org, inbound).as_response()
    except UnknownRoute:
        return JsonResponse({"received": False, "outcome": "rejected", "message": "not found"}, status=404)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def provider_webhook(request, provider: str, org: str):
    """``/api/webhooks/{provider}/{org}``: what we tell organizers to paste into the dashboards."""
    return _handle(request, provider, org)


@csrf_exempt
@require_http_methods(["POST"])
def api_provider_webhook(request, provider: str):
    """``/v1/webhooks/payments/{provider}?org=``: the same, behind the platform's shared secret.

    Off (404) while ``CHECKOUT_API_SECRET`` is unset. The secret proves the caller is our
    forwarder; the provider's own verification still runs on the forwarded request.
    """
    secret = settings.CHECKOUT_API_SECRET
    if not secret:
        return JsonResponse({"received": False, "outcome": "rejected", "message": "not found"}, status=404)
    given = request.headers.get("x-checkout-secret", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return JsonResponse({"received": False, "outcome": "rejected", "message": "bad x-checkout-secret"}, status=401)
    org = request.GET.get("org", "")
    if not org:
        return JsonResponse({"received": False, "outcome": "rejected", "message": "org is required"}, status=400)
    return _handle(request, provider, org)
