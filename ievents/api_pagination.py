"""Cursor pagination for every API list: newest first, stable while rows are added.

    GET /v1/webhook_events?limit=20
    → {"object": "list", "data": [...], "has_more": true, "next_cursor": "MTIz"}
    GET /v1/webhook_events?limit=20&cursor=MTIz
    → the next (older) page

A cursor is an opaque token for "after this row" (rows are ordered by primary key,
descending; the key is encrypted in it, see ``encode_cursor``), and for one list of one
organization: another organization's cursor, or another list's, is a 400
``invalid_cursor`` (docs/api.md), not a quietly empty page. So a page never repeats
or skips a row when new ones arrive meanwhile, as offset pagination would. ``limit`` is
1 to ``API_MAX_PAGE_SIZE`` (default ``API_PAGE_SIZE``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from .api_errors import ApiError
from .crypto import PREFIX as ENCRYPTED_PREFIX
from .crypto import DecryptionError, decrypt, encrypt

# Inside the encryption: what the cursor is, so no other token we encrypt passes for one.
CURSOR_PREFIX = "cursor:"


def list_scope(request) -> str:
    """Whose list, and which: the key's organization and the list's path (hashed, short)."""
    organization = getattr(request, "organization", None)
    path = hashlib.sha256(request.path.encode()).hexdigest()[:12]
    return f"{getattr(organization, 'pk', '')}:{path}"


def encode_cursor(pk: int, scope: str = "") -> str:
    """``pk`` encrypted (Fernet, the field-encryption keys): a global row number would tell
    any key holder how many rows the whole platform has, and how fast they grow. ``scope``
    (``list_scope``) is sealed in with it."""
    return encrypt(f"{CURSOR_PREFIX}{scope}|{pk}").removeprefix(ENCRYPTED_PREFIX).rstrip("=")


def decode_cursor(cursor: str, scope: str = "") -> int:
    try:
        raw = decrypt(ENCRYPTED_PREFIX + cursor + "=" * (-len(cursor) % 4))
    except DecryptionError:
        raw = ""
    given_scope, _, number = raw.removeprefix(CURSOR_PREFIX).rpartition("|")
    if not raw.startswith(CURSOR_PREFIX) or not number.isascii() or not number.isdigit() or int(number) < 1:
        raise ApiError("The cursor is not one we gave out; use next_cursor from the previous page.", "invalid_cursor")
    if given_scope != scope:
        raise ApiError("The cursor was given out for another list or another organization's API key; use "
                       "next_cursor from the previous page of this list.", "invalid_cursor")
    return int(number)


def page_limit(request) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return settings.API_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= settings.API_MAX_PAGE_SIZE:
        raise serializers.ValidationError({"limit": [f"A whole number from 1 to {settings.API_MAX_PAGE_SIZE}."]})
    return int(raw)


def paginate(request, queryset, represent: Callable[[object], dict]) -> Response:
    """One page of ``queryset`` (newest first) as ``represent`` shows each row."""
    limit = page_limit(request)
    queryset = queryset.order_by("-pk")
    cursor = request.query_params.get("cursor")
    scope = list_scope(request)
    if cursor:
        queryset = queryset.filter(pk__lt=decode_cursor(cursor, scope))
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Response({
        "object": "list",
        "data": [represent(row) for row in rows],
        "has_more": has_more,
        "next_cursor": encode_cursor(rows[-1].pk, scope) if has_more else None,
    })


# --- For the OpenAPI schema ---------------------------------------------------------------
PAGINATION_PARAMETERS = [
    OpenApiParameter("limit", int, description=f"Rows per page, 1 to {settings.API_MAX_PAGE_SIZE}."),
    OpenApiParameter("cursor", str, description="next_cursor from the previous page."),
]


def paginated(item, name: str):
    """The schema of a page whose ``data`` holds ``item`` (a serializer class or instance)."""
    if isinstance(item, type) and issubclass(item, serializers.BaseSerializer):
        data = item(many=True)
    else:
        data = serializers.ListField(child=serializers.DictField())
    return inline_serializer(name, fields={
        "object": serializers.CharField(),
        "data": data,
        "has_more": serializers.BooleanField(),
        "next_cursor": serializers.CharField(allow_null=True),
    })
