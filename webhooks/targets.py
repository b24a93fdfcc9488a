"""Which outbound URLs we may call: the save-time half of the SSRF guard.

The connect-time half lives in ``webhooks.http``: a name that resolved to a public
address when saved may resolve to a private one later, so the address actually
connected to is checked again there.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class TargetRefused(ValueError):
    """We will not send requests to this URL."""


def address_is_forbidden(ip: str) -> bool:
    """Loopback, private, link-local (cloud metadata), multicast, reserved, unspecified."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast


def check_target_url(url: str, *, allow_private: bool | None = None, resolve: bool = True) -> None:
    """Raise ``TargetRefused`` unless ``url`` is one we may call."""
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("Use an https:// URL.")
    if parts.scheme == "http" and not settings.DEBUG and not allow_private:
        raise TargetRefused("Use an https:// URL.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    if parts.username or parts.password:
        raise TargetRefused("Credentials in the URL are not allowed; use the signing secret.")
    try:
        port = parts.port  # raises ValueError for ":99999", which Django's URL check lets through
    except ValueError as exc:
        raise TargetRefused("The URL's port is not a number from 0 to 65535.") from exc
    if allow_private or not resolve:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"The host {parts.hostname!r} does not resolve.") from exc
    for info in infos:
        if address_is_forbidden(info[4][0]):
            raise TargetRefused("The URL points to a private or reserved address.")
