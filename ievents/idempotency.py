"""``Idempotency-Key`` on every API ``POST``: a repeat returns the first response.

A client that lost the answer to a ``POST`` (a timeout, a dropped connection) sends it
again with the same key and gets the first response back, byte for byte, instead of a
second checkout session or a second endpoint. The rules:

- Keys are scoped to the API key that sent them (a hash of the ``Authorization`` header),
  so one organization can never read another's stored response.
- The same key with a different request (path or body) is refused with 422
  ``idempotency_key_reused``; while the first request still runs, a repeat gets 409
  ``idempotency_key_in_use``.
- Responses below 500 are kept for ``IDEMPOTENCY_KEY_TTL_SECONDS`` (a 400 is an answer
  too); server errors and 401s are not kept, so a retry runs again.
- The API key is authenticated before anything is replayed: a key revoked since its first
  request gets 401, never the stored answer.
- A secret is never kept: an answer that shows one (``secret`` of a new webhook endpoint or
  gate, or of a rotation) is stored without it, and its replay says so in ``replay_note``
  (rotate the secret to get a new one). An answer that would still hold a ``whsec_…``
  secret anywhere else is not stored at all; its repeat is refused with 409
  ``idempotency_replay_withheld``.

- A stored answer may name a person (the ``customer`` of a new checkout session). It is
  kept sealed with a key made from the request itself (the API key's header, the
  ``Idempotency-Key`` and the body), so the table holds nothing readable without the
  original request, and the request's fingerprint is an HMAC under ``SECRET_KEY``. Once an
  order it names has been erased (``ievents.operations.erasure``), its replay is refused with 410
  ``idempotency_replay_erased``.

It is a middleware (an entry point in docs/architecture.md's layers, so it may read
checkout's orders) rather than a view mixin so that every ``POST`` under ``/v1/`` gets it,
whoever wrote the view. Storage is a table of its own (``IdempotencyRecord``, shared by
every web process): claiming a key is one insert, whose primary key makes the first one win;
keeping the answer is one update. (It was the database cache, which keeps 300 rows and culls
a third when full: past a few hundred keyed requests a day, a repeat could run again. Issue 26.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed

from checkout.models import CheckoutSession

from .api_auth import ApiKeyAuthentication
from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
# How long a "running" marker lives: a process killed mid-request must not block the key
# for the whole TTL.
RUNNING_TTL_SECONDS = 120
API_PREFIX = "/v1/"
# Fields an answer shows once (the ``secret`` of a new endpoint or gate, of a rotation): the
# replay record, kept a day, holds the answer without them.
SHOWN_ONCE_FIELDS = ("secret",)
# A whole secret (a masked hint such as ``whsec_…abcd`` is not one).
SECRET_PATTERN = re.compile(rb"whsec_[A-Za-z0-9+/=_-]{16,}")
# The checkout sessions an answer names (``cs_…``): a replay of an erased one is refused.
SESSION_ID = re.compile(rb"\bcs_[A-Za-z0-9]+")
REPLAY_NOTE = (f"A replay of the first response to this {HEADER}, without its secret: a secret is shown only "
               "once and never stored for replays. Rotate it (POST .../rotate_secret) to get a new one.")


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


class IdempotencyKeyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER)
        authorization = request.headers.get("Authorization", "")
        if request.method != "POST" or key is None or not request.path.startswith(API_PREFIX) or not authorization:
            return self.get_response(request)
        if not KEY_PATTERN.match(key):
            return _error(400, "invalid_idempotency_key",
                          f"{HEADER} must be 1 to 255 printable ASCII characters without spaces.")
        if not _authenticates(request):
            return self.get_response(request)  # the view answers 401; nothing is replayed or kept
        scope = hashlib.sha256(authorization.encode("latin-1", "replace")).hexdigest()
        record_key = hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()
        fingerprint = hmac.new(
            settings.SECRET_KEY.encode(),
            request.method.encode() + b" " + request.get_full_path().encode() + b"\n" + request.body, hashlib.sha256,
        ).hexdigest()
        seal = _seal(authorization, key, request.body)

        stored = _claim(record_key, fingerprint)
        if stored is not None:
            return self._answer_repeat(stored, fingerprint, seal)

        response = self.get_response(request)
        records = IdempotencyRecord.objects.filter(key=record_key)
        if response.status_code >= 500 or response.status_code == 401 or getattr(response, "streaming", False):
            records.delete()
            return response
        content = _without_secrets(bytes(response.content))
        records.update(
            state="done" if content is not None else "withheld",
            status=response.status_code,
            content=seal.encrypt(content) if content else b"",
            sessions=sorted({found.decode() for found in SESSION_ID.findall(content or b"")}),
            content_type=response.get("Content-Type", "application/json"),
            expires_at=timezone.now() + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
        )
        return response

    @staticmethod
    def _answer_repeat(stored: IdempotencyRecord, fingerprint: str, seal: Fernet) -> HttpResponse:
        if stored.fingerprint != fingerprint:
            return _error(422, "idempotency_key_reused",
                          f"This {HEADER} was used for a different request; use a new key for a new request.")
        if stored.state == "withheld":
            return _error(409, "idempotency_replay_withheld",
                          f"The first response to this {HEADER} held a secret, which is shown only once and not "
                          "kept for replays; the request was not repeated.")
        if stored.state != "done":
            return _error(409, "idempotency_key_in_use",
                          f"A request with this {HEADER} is still being processed; retry in a moment.")
        if stored.sessions and _any_erased(stored.sessions):
            return _error(410, "idempotency_replay_erased",
                          f"The first response to this {HEADER} named an attendee whose personal data has since been "
                          "erased on their request; it is not replayed.")
        try:
            content = seal.decrypt(bytes(stored.content)) if stored.content else b""
        except InvalidToken:  # stored before answers were sealed, or under another SECRET_KEY
            return _error(409, "idempotency_replay_withheld",
                          f"The first response to this {HEADER} can no longer be replayed; the request was not repeated.")
        replay = HttpResponse(content, status=stored.status, content_type=stored.content_type)
        replay["Idempotent-Replayed"] = "true"
        return replay


def _claim(record_key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Take the key for this request (None), or return the record that holds it: one insert
    when the key is new. A record past its time (its replay window over, or a process killed
    mid-request) is taken over by whoever updates it first."""
    now = timezone.now()
    running = {"fingerprint": fingerprint, "state": "running", "status": None, "content": b"", "content_type": "",
               "sessions": [], "expires_at": now + timedelta(seconds=RUNNING_TTL_SECONDS)}
    for _ in range(2):
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.create(key=record_key, **running)
            return None
        except IntegrityError:
            pass
        if IdempotencyRecord.objects.filter(key=record_key, expires_at__lte=now).update(**running):
            return None
        stored = IdempotencyRecord.objects.filter(key=record_key).first()
        if stored is not None:
            return stored
        # Deleted in between (the first request failed): claim it again, once.
    return IdempotencyRecord(key=record_key, fingerprint=fingerprint, state="running")


def _seal(authorization: str, key: str, body: bytes) -> Fernet:
    """The key a stored answer is sealed with: only the same request (same API key, same
    Idempotency-Key, same body) opens it again."""
    material = b"\0".join([b"idempotency-replay", authorization.encode("latin-1", "replace"), key.encode(), body])
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material).digest()))


def _any_erased(public_ids: list[str]) -> bool:
    return CheckoutSession.objects.filter(public_id__in=public_ids, personal_data_erased_at__isnull=False).exists()


def _authenticates(request) -> bool:
    try:
        return ApiKeyAuthentication().authenticate(request) is not None
    except AuthenticationFailed:
        return False


def _without_secrets(content: bytes) -> bytes | None:
    """``content`` as a replay may keep it: the shown-once fields dropped and a note in
    their place; None when a secret would remain anyway (then nothing is kept)."""
    if not SECRET_PATTERN.search(content) and not any(f'"{name}"'.encode() in content for name in SHOWN_ONCE_FIELDS):
        return content
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    withheld = [name for name in SHOWN_ONCE_FIELDS if body.pop(name, None) is not None]
    if withheld:
        body["replay_note"] = REPLAY_NOTE
    kept = json.dumps(body, separators=(",", ":")).encode()
    return None if SECRET_PATTERN.search(kept) else kept


class ShownOnceSecret(serializers.Serializer):
    """For the schema: an answer whose ``secret`` is shown once, so never in its replay."""

    secret = serializers.CharField(required=False, help_text=(
        "whsec_…: verify our signatures with it. Shown only in this response: a repeat with the same "
        f"{HEADER} answers without it, with replay_note instead."))
    replay_note = serializers.CharField(required=False, help_text=(
        f"Only in a replay ({HEADER}): the secret is not kept for replays; rotate it to get a new one."))


def document_idempotency_key(result, generator, request, public):
    """drf-spectacular hook: every POST operation documents the optional header."""
    parameter = {
        "in": "header",
        "name": HEADER,
        "required": False,
        "description": "Send the same key again to get the first response back instead of repeating the action.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x21-\x7e]+$"},
    }
    for operations in result.get("paths", {}).values():
        post = operations.get("post")
        if post is not None:
            post.setdefault("parameters", []).append(parameter)
    return result
