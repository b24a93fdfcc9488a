"""Secrets out of every log line we write: URL parameters that carry one are masked.

Ifthenpay authenticates its callback with the anti-phishing ``key`` in the query string,
and an Easypay notification URL may carry ``?secret=`` (its Basic-auth form keeps the
secret out of the URL: ``payments/easypay.py``). An access log writes the query as it
came, the right key and every attacker's guess alike, and either key forges "paid" for an
organization. So every line goes through ``redact`` before it is written:

- Django's handlers, runserver's access log (``django.server``) included, carry the
  ``RedactSecrets`` filter (``settings.LOGGING``);
- gunicorn's access and error logs carry it too: ``gunicorn.conf.py`` names
  ``RedactingGunicornLogger`` as gunicorn's logger class (an ``access_log_format`` can
  only choose fields, not mask part of one);
- a Celery worker's handlers (its own, not ``LOGGING``'s) get it when Celery sets them up
  (``ievents.celery.mask_secrets_in_worker_logs``).

A parameter is a secret by its name (``key``, ``secret``, ``token``, ``password``,
``signature``, or a name ending in one: ``mbWayKey``, ``api_key``, ``client_secret``),
compared after percent-decoding, so ``k%65y=`` is masked too; so is the password of a
URL's ``user:password@``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

MASK = "***"
SECRET_NAME_ENDINGS = ("key", "secret", "token", "password", "passwd", "signature")
SECRET_NAMES = {"sig", "auth", "pwd"}

# ``name=value`` after a ``?`` or ``&``: a value runs to the next ``&`` (as Django reads a
# query), ``;`` (another parameter separator), the fragment or white space. Not to a quote:
# a quote is part of the value a server reads (``?key=WRONG'TAIL`` must not leave ``TAIL``
# in clear); a log line's closing quote after a query is masked with it, which is safe.
_PARAMETER = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;?#\s\"']+)=(?P<value>[^&;#\s]*)")
# ... and a query inside a value (``?next=/pay?key=…``): not ours to read, masked all the same.
_NESTED_PARAMETER = re.compile(r"(?P<lead>\?)(?P<name>[^=&;?#\s\"']+)=(?P<value>[^&;?#\s]*)")
# A scheme starts where no scheme character precedes it and is short: a long run of them
# (an attacker's URL) is tried once, not once per character (quadratic).
_USERINFO = re.compile(r"(?P<lead>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^:/@\s\"']*:)"
                       r"(?P<password>[^@/\s\"']+)@")


def is_secret_name(name: str) -> bool:
    plain = re.sub(r"[^a-z0-9]", "", unquote(name).lower())
    return plain in SECRET_NAMES or plain.endswith(SECRET_NAME_ENDINGS)


def _mask_parameter(match: re.Match) -> str:
    if not match["value"] or not is_secret_name(match["name"]):
        return match[0]
    return f"{match['lead']}{match['name']}={MASK}"


def redact(text: str) -> str:
    """``text`` with the value of every secret-bearing URL parameter (and URL password) masked."""
    if "=" in text:
        text = _NESTED_PARAMETER.sub(_mask_parameter, _PARAMETER.sub(_mask_parameter, text))
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['lead']}{MASK}@", text)
    return text


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message (and its traceback) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted: the handler reports that
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # A requests/urllib3 error names the URL it called, query included.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def add_filter_once(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactSecrets) for f in target.filters):
        target.addFilter(RedactSecrets())
