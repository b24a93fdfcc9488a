"""Two-factor sign-in to the back office: an authenticator app (TOTP) and recovery codes.

A member signs in with their password, then with the six-digit code their authenticator
app shows (or one of their recovery codes, each good once). The devices are django-otp's:
one confirmed ``TOTPDevice`` (the app) and one ``StaticDevice`` holding the unused
recovery codes. django-otp keeps which device verified the session; ``pending_step`` says
what a signed-in member still owes before the admin lets them in:

- ``VERIFY``: they have an authenticator and have not given a code in this session;
- ``ENROL``: they have none, and an organization they belong to requires one
  (``Organization.require_two_factor``, set by its owners).

Codes are checked against one device, chosen by their shape (six digits: the app; else a
recovery code), under a row lock: django-otp's throttling (a wait that doubles with each
wrong code) and its refusal of a TOTP code already used are then per device and race-free.
"""

from __future__ import annotations

import base64
import math
import re

import segno
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import Membership

VERIFY, ENROL = "verify", "enrol"
RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_CODES_NAME = "Recovery codes"
TOTP_CODE = re.compile(r"^\d{6}$")


class TwoFactorError(Exception):
    """A code was not accepted; nothing changed but the device's count of wrong codes."""


class WrongCode(TwoFactorError):
    pass


class TooManyAttempts(TwoFactorError):
    """Wrong codes came too fast: the device takes none for ``wait_seconds``."""

    def __init__(self, wait_seconds: int):
        super().__init__(wait_seconds)
        self.wait_seconds = max(1, wait_seconds)


class SetUpOver(TwoFactorError):
    """The authenticator being confirmed is no longer waiting: confirmed already (a second
    click), or replaced by another set-up."""


class TwoFactorRequired(TwoFactorError):
    """An organization of the member's requires two-factor sign-in: it cannot be turned off."""


# --- Where a member stands -----------------------------------------------------------------------
def authenticator(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def is_required(user) -> bool:
    """Whether an organization ``user`` belongs to requires two-factor sign-in."""
    return Membership.objects.filter(user=user, organization__require_two_factor=True).exists()


def pending_step(request) -> str | None:
    """What the signed-in ``request.user`` must do before the admin: VERIFY, ENROL or nothing."""
    user = request.user
    if not user.is_authenticated or user.is_verified():
        return None
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return VERIFY
    if is_required(user):
        return ENROL
    return None


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --- Enrolment -----------------------------------------------------------------------------------
def start_enrolment(user) -> TOTPDevice:
    """The authenticator being set up for ``user`` (unconfirmed until a code from it is given):
    the one begun before, so reloading the page does not change the QR code, or a new one."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def secret_text(device: TOTPDevice) -> str:
    """The key as an app asks for it when typed in: base32, in groups of four."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i:i + 4] for i in range(0, len(key), 4))


def qr_code_svg(device: TOTPDevice, title: str) -> str:
    """The device's otpauth:// URL as an inline SVG QR code (no script, no style attribute)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#000", light="#fff", title=title)


def confirm_enrolment(user, device_id: int, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the authenticator ``device_id`` with a ``code`` it shows; it replaces any
    earlier one, and a fresh set of recovery codes replaces the old. Returns the device and
    the codes (to be shown once: only their use is stored after)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
        if device is None:
            raise SetUpOver()
        refusal = _check(device, code.strip().replace(" ", ""))
        if refusal is None:
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _replace_recovery_codes(user)
    if refusal is not None:  # raised after the transaction, so the wrong code's count is kept
        raise refusal
    return device, codes


def new_recovery_codes(user) -> list[str]:
    """A fresh set of recovery codes for ``user``; the earlier ones stop working."""
    with transaction.atomic():
        return _replace_recovery_codes(user)


def _replace_recovery_codes(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_CODES_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def turn_off(user) -> None:
    """Remove ``user``'s authenticator and recovery codes, unless an organization requires them."""
    if is_required(user):
        raise TwoFactorRequired()
    remove_devices(user)


def remove_devices(user) -> int:
    """The operator's reset (a member who lost their phone and codes): every device goes."""
    with transaction.atomic():
        removed, _ = TOTPDevice.objects.filter(user=user).delete()
        removed_static, _ = StaticDevice.objects.filter(user=user).delete()
    return removed + removed_static


# --- Signing in ----------------------------------------------------------------------------------
def verify(user, code: str):
    """The device that accepts ``code`` for ``user``: raises ``WrongCode`` or ``TooManyAttempts``."""
    code = code.strip().replace(" ", "").replace("-", "")
    model = TOTPDevice if TOTP_CODE.match(code) else StaticDevice
    with transaction.atomic():
        device = model.objects.select_for_update().filter(user=user, confirmed=True).first()
        refusal = WrongCode() if device is None else _check(device, code.lower())
    if refusal is not None:  # raised after the transaction, so the wrong code's count is kept
        raise refusal
    return device


def _check(device, code: str) -> TwoFactorError | None:
    """None if ``device`` accepts ``code``; else why not. A code sent while the device is
    waiting out earlier wrong ones is not even tried."""
    allowed, details = device.verify_is_allowed()
    if not allowed:
        locked_until = (details or {}).get("locked_until")
        wait = (locked_until - timezone.now()).total_seconds() if locked_until else 1
        return TooManyAttempts(math.ceil(wait))
    return None if device.verify_token(code) else WrongCode()
