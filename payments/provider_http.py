"""The HTTP transport of the providers that speak JSON over ``requests`` (Easypay,
Ifthenpay): one call under a total deadline and a size cap, its failures turned into
``ProviderUnavailable`` (worth a retry) or ``ProviderError``. What to ask and what the
answer means stays in each provider's file."""

from __future__ import annotations

import json
import time
from typing import Any

import requests
import urllib3
from django.conf import settings

from .base import ProviderError, ProviderUnavailable

PROVIDER_RESPONSE_MAX_BYTES = 1024 * 1024


def call_json(provider: str, method: str, url: str, *, headers: dict | None = None, json_body: Any = None,
              params: dict | None = None, empty_ok: bool = False) -> Any:
    """One JSON call to ``provider``'s API (its name is for the error messages).

    5xx, 429, timeouts and connection errors are ``ProviderUnavailable``; any other
    non-2xx, or a body that is not JSON, is a plain ``ProviderError``. The whole answer must
    arrive within ``PAYMENT_PROVIDER_TIMEOUT`` (checked between chunks, so a trickling
    server cannot hold a webhook or a page for long) and within
    ``PROVIDER_RESPONSE_MAX_BYTES``. ``empty_ok``: a 2xx with no body (``204 No Content``)
    is an answer too, returned as ``None``.
    """
    timeout = settings.PAYMENT_PROVIDER_TIMEOUT
    deadline = time.monotonic() + timeout
    try:
        with requests.request(method, url, headers=headers, json=json_body, params=params, timeout=timeout,
                              allow_redirects=False, stream=True) as response:
            content = _read_capped(response, deadline, f"{provider}: {_path(url)}")
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{provider}: {type(exc).__name__} calling {_path(url)}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(f"{provider}: HTTP {response.status_code} from {_path(url)}")
    if empty_ok and 200 <= response.status_code < 300 and not content.strip():
        return None
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderError(f"{provider}: HTTP {response.status_code}, body is not JSON") from exc
    if not 200 <= response.status_code < 300:
        raise ProviderError(f"{provider}: HTTP {response.status_code} from {_path(url)}: {str(body)[:200]}")
    return body


def _read_capped(response: requests.Response, deadline: float, source: str) -> bytes:
    """Read the body as it arrives (``read1``: whatever one ``recv`` brings, so a byte a
    second is seen as such), checking the deadline and the cap after each piece."""
    chunks, size = [], 0
    raw = response.raw
    raw.decode_content = True
    while True:
        try:
            chunk = raw.read1(16 * 1024)
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise requests.ConnectionError(str(exc)) from exc
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > PROVIDER_RESPONSE_MAX_BYTES:
            raise ProviderError(f"{source} answered more than {PROVIDER_RESPONSE_MAX_BYTES} bytes")
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise ProviderUnavailable(f"{source} answered too slowly")


def _path(url: str) -> str:
    """The URL without its query string: API keys sometimes travel there and must not be logged."""
    return url.split("?", 1)[0]
