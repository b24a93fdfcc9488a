"""The safe outbound HTTP client: one POST under a total deadline, to a checked address.

Everything we send to URLs that organizers typed (the pre-payment gate, notifications,
per-session webhook URLs) goes through ``post``. It never raises for network problems: the
outcome is an ``HttpResult`` the caller decides on. Thread-safe (Celery workers and web
threads share one connection pool per host).

Why each part is here:

- **Total deadline.** Socket timeouts bound each ``recv``, not the whole exchange: a server
  sending one byte a second never trips them. So name resolution runs in a small worker
  pool and is waited for only until the deadline (``getaddrinfo`` cannot be interrupted),
  connect and TLS get the time left as their timeout, and while we wait for the status
  line and read the body a watchdog thread shuts the socket down at the deadline.
- **The address actually connected to is checked.** We resolve the name once, check every
  address, and connect to the checked one (the "pinned" address), sending the original
  name as ``Host`` and TLS SNI. A name that resolved to a public address when it was saved
  (``webhooks.targets``) and to ``127.0.0.1`` now is refused here. This is the technique of
  ``requests-hardened`` (Saleor's), whose adapter we extend: it resolves inside the
  connection pool with no time limit and checks only the first address, so we hand it an
  address we resolved and checked ourselves.
- **No redirects**: we call the transport adapter directly, which never follows them; a
  3xx comes back as a 3xx.
- **Capped body**: reading stops at ``max_bytes``; we ask for ``identity`` encoding so a
  small compressed body cannot expand into a large one.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import os
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

from .targets import address_is_forbidden

USER_AGENT = "iEvents-Webhooks/1.0 (+https://github.com/ievents)"
READ_CHUNK = 16 * 1024
KEPT_ALIVE_PER_HOST = 32  # idle connections kept per host (and scheme, and port)


@dataclass(frozen=True)
class HttpResult:
    status_code: int | None  # None when no complete status line was received
    body: bytes  # at most max_bytes
    elapsed_ms: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased response header names
    error: str = ""  # human-readable; "" when a complete response was read
    error_kind: str = ""  # "", "timeout", "connection", "tls", "blocked", "too_large", "invalid_url"

    @property
    def ok(self) -> bool:
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300


class _Failed(Exception):
    """Internal: ends a ``post`` early with an error kind and a message."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def address_is_blocked(ip: str) -> bool:
    """Our save-time rule (``address_is_forbidden``) plus the ranges ``requests-hardened``
    also refuses (NAT64, 6to4, CG-NAT…), which can route to internal hosts."""
    if address_is_forbidden(ip):
        return True
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in EXTRA_BLOCKED_NET_RANGES)


# --- The deadline --------------------------------------------------------------------------
class _Deadline:
    """One request's deadline; the watchdog shuts the watched connection's socket at it."""

    def __init__(self, at: float):
        self.at = at
        self.expired = False
        self._done = False
        self._conn = None
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.at

    def watch(self, conn) -> None:
        with self._lock:
            self._conn = conn
            if self.expired:
                _shut(conn)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._conn is not None:
                _shut(self._conn)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._conn = None


def _shut(conn) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        # The plain socket's shutdown, also for TLS sockets: SSLSocket.shutdown would drop
        # its SSL object under the reading thread's feet. This wakes a blocked recv at once.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """One daemon thread that expires deadlines in order."""

    def __init__(self):
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: _Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._seq), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines", daemon=True)
                self._thread.start()
            # Woken only when this deadline comes first: most requests share one timeout, so
            # their deadlines arrive in order and the thread's wait already ends in time.
            if self._heap[0][2] is deadline:
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2]._done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)[2].expire()


_current = threading.local()  # the deadline of the request this thread is sending


class _WatchedConnectionMixin:
    """Before waiting for a response: shrink the socket timeout to the time left and put
    the connection under the watchdog."""

    def getresponse(self):
        deadline: _Deadline | None = getattr(_current, "deadline", None)
        if deadline is not None:
            left = deadline.remaining()
            if left <= 0:
                raise TimeoutError("deadline passed before the response")
            self.timeout = min(self.timeout, left) if isinstance(self.timeout, int | float) else left
            deadline.watch(self)
        return super().getresponse()


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


# --- Connecting to the checked address ---------------------------------------------------
class _PinnedAddressAdapter(IPFilterAdapter):
    """``requests-hardened``'s adapter, connecting to the address we resolved and checked
    (``request.pinned_address``) instead of resolving again without a time limit."""

    def __init__(self, *, is_https_proto: bool):
        super().__init__(is_https_proto=is_https_proto)
        # requests keeps 10 idle connections per host; a delivery worker sends up to
        # 16 at once (more with a larger pool), and each connection the pool could not
        # keep would be opened again for the next POST.
        self.init_poolmanager(10, KEPT_ALIVE_PER_HOST)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = HTTPAdapter.build_connection_pool_key_attributes(self, request, verify, cert)
        hostname = host_params["host"]
        host_header = f"[{hostname}]" if ":" in hostname else hostname
        if host_params["port"] is not None:
            host_header += f":{host_params['port']}"
        request.headers["Host"] = host_header
        if self._is_https_proto:
            # Check the certificate against, and send SNI for, the name, not the address.
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        pinned = request.pinned_address
        host_params["host"] = f"[{pinned}]" if ":" in pinned else pinned
        return host_params, pool_kwargs

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        pool = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        pool.ConnectionCls = _WatchedHTTPSConnection if self._is_https_proto else _WatchedHTTPConnection
        return pool


def _new_process_state() -> None:
    """Per process: one adapter per scheme, whose pools keep connections alive per host, and
    the resolver pool (getaddrinfo blocks and cannot be cancelled: it runs there, and we
    stop waiting at the deadline). A forked child (Celery prefork, gunicorn) must not share
    its parent's sockets or inherit a pool whose threads did not survive the fork."""
    global _ADAPTERS, _resolver, _watchdog
    _ADAPTERS = {"http": _PinnedAddressAdapter(is_https_proto=False),
                 "https": _PinnedAddressAdapter(is_https_proto=True)}
    _resolver = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")
    _watchdog = _Watchdog()


_new_process_state()
os.register_at_fork(after_in_child=_new_process_state)


def _resolve(host: str, port: int, deadline: _Deadline) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    future = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=max(deadline.remaining(), 0))
    except FutureTimeout:
        raise _Failed("timeout", f"Resolving {host} took longer than the timeout.") from None
    except (socket.gaierror, UnicodeError):
        raise _Failed("connection", f"The host {host} does not resolve.") from None
    addresses = []
    for info in infos:
        if info[0] in (socket.AF_INET, socket.AF_INET6) and info[4][0] not in addresses:
            addresses.append(info[4][0])
    if not addresses:
        raise _Failed("connection", f"The host {host} has no IP address.")
    return addresses


def _checked_target(url: str, allow_private: bool):
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _Failed("invalid_url", "The URL is not valid.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Failed("invalid_url", "The URL must be http(s)://host/….")
    if parts.username or parts.password:
        raise _Failed("invalid_url", "Credentials in the URL are not allowed.")
    if parts.scheme == "http" and not settings.DEBUG and not allow_private:
        raise _Failed("blocked", "Plain http:// is not allowed in production; use https://.")
    return parts, port


def _classify(exc: BaseException, deadline: _Deadline) -> tuple[str, str]:
    if deadline.passed():
        return "timeout", "No complete answer within the timeout."
    if isinstance(exc, requests.exceptions.SSLError | urllib3.exceptions.SSLError):
        return "tls", f"TLS failed: {_reason(exc)}."
    if isinstance(exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return "timeout", "No complete answer within the timeout."
    return "connection", f"Connection failed: {_reason(exc)}."


def _reason(exc: BaseException) -> str:
    """The root cause in a few words ("Connection refused", "WRONG_VERSION_NUMBER"), not
    the pool's nested repr."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        err = stack.pop(0)
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ssl.SSLError) and err.reason:
            return str(err.reason)
        if isinstance(err, OSError) and err.strerror:
            return err.strerror
        nested = [err.__cause__, err.__context__, getattr(err, "reason", None), *err.args]
        stack.extend(e for e in nested if isinstance(e, BaseException))
    return exc.__class__.__name__


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         max_bytes: int | None = None, allow_private: bool | None = None) -> HttpResult:
    """POST ``body`` to ``url`` and read the whole answer within ``timeout`` seconds in all.

    Never raises for network problems; see ``HttpResult.error_kind``. Redirects are not
    followed. The body is capped at ``max_bytes`` (``WEBHOOK_MAX_RESPONSE_BYTES``).
    Loopback, private, link-local and other non-public addresses are refused unless
    ``allow_private`` (``WEBHOOK_ALLOW_PRIVATE_TARGETS``).
    """
    started = time.monotonic()
    max_bytes = settings.WEBHOOK_MAX_RESPONSE_BYTES if max_bytes is None else max_bytes
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS if allow_private is None else allow_private
    deadline = _Deadline(started + timeout)
    status_code: int | None = None
    response_headers: dict[str, str] = {}
    received = b""

    def result(error_kind: str = "", error: str = "") -> HttpResult:
        return HttpResult(status_code, received, int((time.monotonic() - started) * 1000), response_headers,
                          error[:500], error_kind)

    response = None
    complete = False
    _watchdog.add(deadline)
    _current.deadline = deadline
    try:
        parts, port = _checked_target(url, allow_private)
        addresses = _resolve(parts.hostname, port, deadline)
        if not allow_private and any(address_is_blocked(a) for a in addresses):
            raise _Failed("blocked", f"{parts.hostname} resolves to a private or reserved address.")
        # Only the parts of requests' preparation a POST of ours has: no cookies (we keep
        # none), no auth (credentials in the URL were refused above), no hooks. Building
        # and consulting an empty cookie jar was two thirds of preparing every request.
        request = requests.PreparedRequest()
        request.prepare_method("POST")
        request.prepare_url(url, None)
        request.prepare_headers({
            "User-Agent": USER_AGENT, "Accept-Encoding": "identity", "Content-Type": "application/json", **headers,
        })
        request.prepare_body(body, None)
        request.pinned_address = addresses[0]
        left = deadline.remaining()
        if left <= 0:
            raise _Failed("timeout", "No complete answer within the timeout.")
        response = _ADAPTERS[parts.scheme].send(request, stream=True, timeout=(left, left),
                                                verify=settings.WEBHOOK_CA_BUNDLE or True)
        status_code = response.status_code
        response_headers = {name.lower(): value for name, value in response.headers.items()}
        declared = response_headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _Failed("too_large", f"The response body is {declared} bytes; the limit is {max_bytes}.")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.raw.read(READ_CHUNK, decode_content=False)
            if deadline.passed():
                raise _Failed("timeout", "The response body did not arrive within the timeout.")
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                received = b"".join(chunks)[:max_bytes]
                raise _Failed("too_large", f"The response body is over the limit of {max_bytes} bytes.")
        received = b"".join(chunks)
        complete = True
        return result()
    except _Failed as failed:
        return result(failed.kind, failed.message)
    except Exception as exc:  # noqa: BLE001 - every transport failure becomes a result, by contract
        kind, message = _classify(exc, deadline)
        return result(kind, message)
    finally:
        deadline.finish()
        _current.deadline = None
        if response is not None and not complete:
            response.close()  # a half-read connection is not put back in the pool
