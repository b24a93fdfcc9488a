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

It is a middleware rather than a view mixin so that every ``POST`` under ``/v1/`` gets it,
whoever wrote the view. Storage is the configured cache (the database cache by default,
shared by every web process); ``cache.add`` is the atomic "first one wins".
"""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
# How long a "running" marker lives: a process killed mid-request must not block the key
# for the whole TTL.
RUNNING_TTL_SECONDS = 120
API_PREFIX = "/v1/"


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
        scope = hashlib.sha256(authorization.encode("latin-1", "replace")).hexdigest()
        cache_key = "idem:" + hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()
        fingerprint = hashlib.sha256(
            request.method.encode() + b" " + request.get_full_path().encode() + b"\n" + request.body
        ).hexdigest()

        if not cache.add(cache_key, {"state": "running", "fingerprint": fingerprint}, RUNNING_TTL_SECONDS):
            stored = cache.get(cache_key)
            if stored is None:  # expired between add and get: treat as first
                cache.add(cache_key, {"state": "running", "fingerprint": fingerprint}, RUNNING_TTL_SECONDS)
            else:
                return self._answer_repeat(stored, fingerprint)

        response = self.get_response(request)
        if response.status_code >= 500 or response.status_code == 401 or getattr(response, "streaming", False):
            cache.delete(cache_key)
            return response
        cache.set(cache_key, {
            "state": "done",
            "fingerprint": fingerprint,
            "status": response.status_code,
            "content": bytes(response.content),
            "content_type": response.get("Content-Type", "application/json"),
        }, settings.IDEMPOTENCY_KEY_TTL_SECONDS)
        return response

    @staticmethod
    def _answer_repeat(stored: dict, fingerprint: str) -> HttpResponse:
        if stored["fingerprint"] != fingerprint:
            return _error(422, "idempotency_key_reused",
                          f"This {HEADER} was used for a different request; use a new key for a new request.")
        if stored["state"] != "done":
            return _error(409, "idempotency_key_in_use",
                          f"A request with this {HEADER} is still being processed; retry in a moment.")
        replay = HttpResponse(stored["content"], status=stored["status"], content_type=stored["content_type"])
        replay["Idempotent-Replayed"] = "true"
        return replay


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
