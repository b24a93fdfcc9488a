"""What an attendee carries to the door: a QR code per ticket and a calendar entry.

The QR code holds the ticket code itself (``ABCD-EFGH-JKLM``), which the door looks up: a
code is 60 random bits and unique, so it needs no signature, and any ordinary scanner reads
it. Both are made here, on our side; no outside service sees a ticket.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import segno
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def _qr(code: str) -> segno.QRCode:
    # A full QR code (not Micro QR, which many phone scanners cannot read), medium error
    # correction: readable from a cracked or dim phone screen.
    return segno.make_qr(code, error="m")


def qr_svg(code: str, title: str = "") -> SafeString:
    """The ticket's QR code as inline SVG, black on white with the standard quiet zone."""
    out = io.BytesIO()
    _qr(code).save(out, kind="svg", xmldecl=False, svgns=True, nl=False, scale=5, border=4,
                   dark="#000", light="#fff", svgclass="qr", lineclass=None)
    svg = out.getvalue().decode()
    # role="img" and a name make a screen reader announce it once, as a picture of a code. The
    # markup is segno's own drawing (paths only); the one text in it is escaped here.
    return mark_safe(svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title or code)}" ', 1))  # noqa: S308


def qr_png(code: str) -> bytes:
    """The same code as a PNG, for the email (mail clients do not all show SVG)."""
    out = io.BytesIO()
    _qr(code).save(out, kind="png", scale=6, border=4)
    return out.getvalue()


# --- The calendar entry (RFC 5545) -------------------------------------------------------
def _escape_text(value: str) -> str:
    """TEXT values: backslash, semicolon, comma and line breaks are escaped."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space, never splitting a
    UTF-8 character."""
    out, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_file(*, uid: str, starts_at: datetime, summary: str, location: str, description: str, url: str,
                  ends_at: datetime | None = None, now: datetime | None = None) -> str:
    """One event as an iCalendar file. The start is written in UTC (``…Z``), which every
    calendar converts to its owner's zone, so the entry is right wherever the phone is."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//iEvents//Checkout//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_utc(now or datetime.now(UTC))}",
        f"DTSTART:{_utc(starts_at)}",
        *([f"DTEND:{_utc(ends_at)}"] if ends_at else []),
        f"SUMMARY:{_escape_text(summary)}",
    ]
    if location:
        lines.append(f"LOCATION:{_escape_text(location)}")
    lines += [f"DESCRIPTION:{_escape_text(description)}", f"URL:{url}", "END:VEVENT", "END:VCALENDAR"]
    return "".join(_fold(line) + "\r\n" for line in lines)
