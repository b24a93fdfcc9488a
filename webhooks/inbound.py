"""Inbound provider webhooks: verify, record once, apply under the session's lock.

Routes (CONTRACT.md): ``POST|GET /api/webhooks/{provider}/{org}`` and
``POST /v1/webhooks/payments/{provider}?org={org}`` (with ``x-checkout-secret``).

The order of things is the security model:

1. the organization and provider must exist (else 404), the body must fit the cap (413);
2. the provider verifies the request with the organization's secret, or the environment's
   for org ``_`` or an organization without its own (``SignatureError`` → 400, recorded).
   The organization and its settings are kept per process for a few seconds
   (``payments.registry.inbound_route``); a request they refuse is verified again with
   fresh ones before it is refused;
3. only then is the body parsed (``MalformedWebhook`` → 400, recorded);
4. a copy of a delivery already recorded is recorded as a duplicate (200) by the one
   statement that finds the first; otherwise a row with a unique ``dedupe_key`` is
   inserted in the same transaction that applies the update, so of 50 copies arriving at
   once exactly one gets past the insert; the others wait on the unique index, then see
   the committed row and answer 200 "duplicate";
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
from django.db import DatabaseError, connection, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from checkout.models import Source
from ievents import writes
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
from payments.registry import get_provider, inbound_route, provider_classes

from .models import InboundWebhook

log = logging.getLogger(__name__)

ENVIRONMENT_ORG = "_"
# Query parameters that carry a secret (Ifthenpay's anti-phishing key, our Easypay secret):
# never stored in the log.
SECRET_PARAMS = {"key", "secret"}
STORED_PAYLOAD_CHARS = 64 * 1024

Outcome = InboundWebhook.Outcome


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
    if provider_name not in provider_classes():
        raise UnknownRoute(f"no provider {provider_name[:30]!r}")
    try:
        organization, provider = _verified(provider_name, org, request)
    except _Refused as refused:
        base = {"provider": provider_name, "organization": refused.organization, "payload": stored_payload(request)}
        row = InboundWebhook.objects.create(**base, verified=False, outcome=Outcome.REJECTED,
                                            error=storable(str(refused.error), 500))
        return Received(400, Outcome.REJECTED, "signature verification failed", row)
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
        provider = provider_classes()[provider_name](route.config)
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
        return _record_failure(base, reprocess_row, Outcome.REJECTED, f"malformed: {exc}", 400)
    except (ProviderUnavailable, ProviderNotConfigured) as exc:
        return _record_failure(base, reprocess_row, Outcome.FAILED, str(exc), 503)
    except ProviderError as exc:  # the provider's API denies what the webhook claims
        return _record_failure(base, reprocess_row, Outcome.REJECTED, str(exc), 400)

    org_key = str(organization.pk) if organization else ENVIRONMENT_ORG
    event_id = storable(parsed.event_id, 200)
    dedupe_key = f"{provider_name}:{org_key}:{event_id}"[:300]
    fields = {**base, "verified": True, "event_id": event_id, "type": storable(parsed.type, 100)}
    try:
        if reprocess_row is None:
            duplicate = _record_if_duplicate(fields, dedupe_key)
            if duplicate is not None:
                return duplicate  # the common retry: one statement, no transaction
        # What applying it writes (payment, session, history, outbox, tickets) and this
        # delivery's outcome go to the database together (ievents.writes): on PostgreSQL,
        # one statement before the commit.
        with transaction.atomic(), writes.gathering() as batch:
            if reprocess_row is not None:
                row = InboundWebhook.objects.select_for_update().get(pk=reprocess_row.pk)
            else:
                row = _record_first(fields, dedupe_key)
                if row is None:
                    # A copy racing this one got the key first: the unique index made this
                    # insert wait for that copy's commit, then skip (no savepoint needed).
                    return _duplicate(fields)
            outcome, session, note = _apply(parsed, organization, provider_name, batch)
            row.outcome, row.session, row.error = outcome, session, storable(note, 500)
            batch.update(row, ["outcome", "session", "error"])
    except (ProviderUnavailable, DatabaseError) as exc:
        log.warning("inbound %s webhook %s failed, the provider will retry: %s", provider_name, parsed.event_id, exc)
        return _record_failure(fields, reprocess_row, Outcome.FAILED, f"transient: {type(exc).__name__}: {exc}", 503)
    return Received(200, outcome, note, row)


# The two statements every verified delivery runs, written out: the ORM's compile cost
# (its ``exists()`` then ``create()``, a savepoint around the insert) was the larger part
# of a duplicate's time. Columns as in ``InboundWebhook``.
#
# A copy of a delivery already recorded is recorded as a duplicate by the statement that
# finds the first one (nothing is inserted when there is none).
_DUPLICATE_SQL = (
    "INSERT INTO webhooks_inboundwebhook"
    " (provider, organization_id, event_id, type, verified, payload, received_at, outcome, error, dedupe_key)"
    " SELECT %(provider)s, %(organization_id)s, %(event_id)s, %(type)s, TRUE, %(payload)s, %(received_at)s,"
    " 'duplicate', 'already received', NULL"
    " WHERE EXISTS (SELECT 1 FROM webhooks_inboundwebhook WHERE dedupe_key = %(dedupe_key)s)"
    " RETURNING id"
)
# The first copy is inserted with its key, or nothing is when another copy holds the key:
# the unique index decides, making this insert wait for that copy's transaction to end.
_FIRST_SQL = (
    "INSERT INTO webhooks_inboundwebhook"
    " (provider, organization_id, event_id, type, verified, payload, received_at, outcome, error, dedupe_key)"
    " VALUES (%(provider)s, %(organization_id)s, %(event_id)s, %(type)s, TRUE, %(payload)s, %(received_at)s,"
    " 'ignored', '', %(dedupe_key)s)"
    " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)


def _insert(sql: str, fields: dict, dedupe_key: str | None, outcome: str, error: str = "") -> InboundWebhook | None:
    """Run one of the two statements above; the row inserted, as ``create`` returns it, or None."""
    row = InboundWebhook(**fields, dedupe_key=dedupe_key, outcome=outcome, error=error, received_at=timezone.now())
    params = {
        "provider": row.provider, "organization_id": row.organization_id, "event_id": row.event_id,
        "type": row.type, "payload": row.payload, "received_at": row.received_at, "dedupe_key": dedupe_key,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return None
    row.pk = found[0]
    row._state.adding = False
    return row


def _record_if_duplicate(fields: dict, dedupe_key: str) -> Received | None:
    row = _insert(_DUPLICATE_SQL, fields, dedupe_key, Outcome.DUPLICATE, "already received")
    if row is None:
        return None
    row.dedupe_key = None  # the first copy holds the key
    return Received(200, Outcome.DUPLICATE, "already received", row)


def _record_first(fields: dict, dedupe_key: str) -> InboundWebhook | None:
    return _insert(_FIRST_SQL, fields, dedupe_key, Outcome.IGNORED)


def _duplicate(fields: dict) -> Received:
    row = InboundWebhook.objects.create(**fields, outcome=Outcome.DUPLICATE, error="already received")
    return Received(200, Outcome.DUPLICATE, "already received", row)


def _apply(parsed: ParsedWebhook, organization: Organization | None, provider_name: str, batch: writes.Writes):
    """Apply each update to its session (only this organization's). Returns (outcome, session, note).

    ``batch``: the writes gathered around this; flushed before each update's session is
    read, so a second update of the same session reads what the first one wrote.
    """
    outcome, session, notes = Outcome.IGNORED, None, []
    if not parsed.updates:
        notes.append(f"{parsed.type}: nothing to do")
    for update in parsed.updates:
        batch.flush()
        found = payments.find_session(update, organization.pk if organization else None, provider_name, lock=True)
        if found is None:
            notes.append(f"{update.kind}: no session of this organization matches")
            continue
        session = found
        result = payments.apply_update(found, update, source=Source.PROVIDER_WEBHOOK)
        notes.append(f"{update.kind}: {result}")
        if result == "applied":
            outcome = Outcome.PROCESSED
    return outcome, session, "; ".join(notes)


def _record_failure(fields: dict, row: InboundWebhook | None, outcome: str, error: str, status: int) -> Received:
    error = storable(error, 500)
    if row is not None:
        InboundWebhook.objects.filter(pk=row.pk).update(outcome=outcome, error=error[:500])
        row.refresh_from_db()
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
