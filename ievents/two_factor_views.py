"""The back office's two-factor pages and the middleware that sends a member to them.

The pages live on the admin site (``IEventsAdminSite.get_urls``), behind its staff login:
``two-factor/verify/`` asks for the code after the password, ``two-factor/setup/`` sets an
authenticator up (QR code and the key as text), ``two-factor/`` shows where the member
stands (new recovery codes, turn it off). The rules are in ``ievents.two_factor``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, gettext_lazy, ngettext
from django_otp import login as otp_login

from . import two_factor

# Admin pages a member may reach before giving their code or enrolling: leaving, and the
# two-factor pages themselves (each checks for itself what it allows).
OPEN_BEFORE_TWO_FACTOR = {"login", "logout", "jsi18n", "two_factor_verify", "two_factor_setup"}


class TwoFactorMiddleware:
    """In the admin, a signed-in member who owes a code is sent to give it, and one whose
    organization requires two-factor sign-in but who has no authenticator is sent to set
    one up, before any other page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or match.namespace != "admin" or match.url_name in OPEN_BEFORE_TWO_FACTOR:
            return None
        step = two_factor.pending_step(request)
        if step is None:
            return None
        target = "admin:two_factor_verify" if step == two_factor.VERIFY else "admin:two_factor_setup"
        return redirect(f"{reverse(target)}?next={_quoted(request.get_full_path())}")


def _quoted(path: str) -> str:
    return quote(path, safe="/")


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return reverse("admin:index")


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Authentication code"), max_length=32, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false",
                                      "autocapitalize": "off", "aria-describedby": "code-help"}),
    )

    def refuse(self, error: two_factor.TwoFactorError) -> None:
        if isinstance(error, two_factor.TooManyAttempts):
            self.add_error("code", ngettext(
                "Too many wrong codes. Wait %(seconds)d second, then try again.",
                "Too many wrong codes. Wait %(seconds)d seconds, then try again.",
                error.wait_seconds) % {"seconds": error.wait_seconds})
        else:
            self.add_error("code", gettext("That code is not right, or was already used. Try the code your app "
                                           "shows now."))


def _page(admin_site, request, template: str, title: str, **context):
    return TemplateResponse(request, template, {**admin_site.each_context(request), "title": title, **context})


def verify_view(admin_site, request):
    """After the password: the code from the authenticator app, or a recovery code."""
    step = two_factor.pending_step(request)
    if step != two_factor.VERIFY:  # verified already, or nothing to verify with
        return redirect(reverse("admin:two_factor_setup") if step == two_factor.ENROL else _next_url(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = two_factor.verify(request.user, form.cleaned_data["code"])
        except two_factor.TwoFactorError as error:
            form.refuse(error)
        else:
            otp_login(request, device)
            if isinstance(device, two_factor.StaticDevice):
                left = two_factor.recovery_codes_left(request.user)
                messages.warning(request, ngettext(
                    "You signed in with a recovery code; %(left)d is left. Make new ones on the two-factor page.",
                    "You signed in with a recovery code; %(left)d are left. Make new ones on the two-factor page.",
                    left) % {"left": left})
            return redirect(_next_url(request))
    return _page(admin_site, request, "admin/two_factor/verify.html", gettext("Two-factor sign-in"),
                 form=form, next=_next_url(request))


def setup_view(admin_site, request):
    """Set up an authenticator app: scan the QR code (or type the key), then give a code."""
    if two_factor.pending_step(request) == two_factor.VERIFY:
        # Someone who has only the password must not replace the member's authenticator.
        return redirect(f"{reverse('admin:two_factor_verify')}?next={_quoted(request.get_full_path())}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # The device the page showed, not whichever is waiting now: a second click must not
        # test the code against a new key.
        posted = request.POST.get("device", "")
        device_id = int(posted) if re.fullmatch(r"[0-9]{1,18}", posted) else 0  # a bigint, or none
        try:
            device, codes = two_factor.confirm_enrolment(request.user, device_id, form.cleaned_data["code"])
        except two_factor.SetUpOver:
            if two_factor.authenticator(request.user) is not None:
                messages.info(request, gettext("Two-factor sign-in is already on. If you did not save your "
                                               "recovery codes, make new ones here."))
                return redirect("admin:two_factor")
            form.add_error("code", gettext("This set-up has expired: scan the QR code below and type its code."))
        except two_factor.TwoFactorError as error:
            form.refuse(error)
        else:
            otp_login(request, device)
            return _recovery_codes_page(admin_site, request, codes, then=_next_url(request))
    device = two_factor.start_enrolment(request.user)
    return _page(admin_site, request, "admin/two_factor/setup.html", gettext("Set up two-factor sign-in"),
                 form=form, next=_next_url(request), device_id=device.pk, secret=two_factor.secret_text(device),
                 qr_code=two_factor.qr_code_svg(device, gettext("QR code to scan with your authenticator app")),
                 required=two_factor.is_required(request.user))


def _recovery_codes_page(admin_site, request, codes: list[str], then: str):
    """The recovery codes, in the response that made them: never stored to be shown again."""
    return _page(admin_site, request, "admin/two_factor/recovery_codes.html", gettext("Your recovery codes"),
                 codes=codes, then=then)


def manage_view(admin_site, request):
    """Where the member stands; new recovery codes; turning two-factor sign-in off."""
    if request.method == "POST":
        if request.POST.get("action") == "recovery_codes" and two_factor.authenticator(request.user):
            codes = two_factor.new_recovery_codes(request.user)
            return _recovery_codes_page(admin_site, request, codes, then=reverse("admin:two_factor"))
        if request.POST.get("action") == "turn_off":
            try:
                two_factor.turn_off(request.user)
            except two_factor.TwoFactorRequired:
                messages.error(request, gettext("Your organization requires two-factor sign-in: it cannot be "
                                                "turned off."))
            else:
                messages.success(request, gettext("Two-factor sign-in is off for your account."))
        return redirect("admin:two_factor")
    return _page(admin_site, request, "admin/two_factor/manage.html", gettext("Two-factor sign-in"),
                 enrolled=two_factor.authenticator(request.user) is not None,
                 codes_left=two_factor.recovery_codes_left(request.user),
                 required=two_factor.is_required(request.user))
