"""The languages people read us in, as codes: Django's (``pt-pt``) and the web's (``pt-PT``).

One place turns a language someone asked for (a browser's, an API client's ``"pt-PT"``) into
one of ``settings.LANGUAGES``, so a stored language is always one we can render.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation


def supported(language: str | None) -> str:
    """``language`` as one of settings.LANGUAGES (``"pt-PT"`` → ``"pt-pt"``); else the default."""
    try:
        return translation.get_supported_language_variant((language or "").lower())
    except LookupError:
        return settings.LANGUAGE_CODE


def active() -> str:
    """The language of the current request (or of the ``override`` around this code)."""
    return supported(translation.get_language())


def web_code(language: str) -> str:
    """Django's code as HTTP and HTML write it: ``pt-pt`` → ``pt-PT``."""
    base, _, region = language.partition("-")
    return f"{base}-{region.upper()}" if len(region) == 2 else language


def is_known(language: str) -> bool:
    """Whether ``language`` names one of settings.LANGUAGES exactly (any case: ``pt-PT``, ``en``)."""
    return language.lower() in {code for code, _ in settings.LANGUAGES}
