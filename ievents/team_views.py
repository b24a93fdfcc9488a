"""The invitation link's page: set a password and join, or accept with an existing account.

Thin: read the token, ask ``ievents.team``, render. The token is in the URL's path, so the
page tells browsers not to send it to other sites as a referrer and not to keep the page.
"""

from django import forms
from django.contrib.auth import get_user_model, login, password_validation
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import team
from .models import Role


class NewPasswordForm(forms.Form):
    password1 = forms.CharField(label=_("Password"), strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                                help_text=password_validation.password_validators_help_text_html())
    password2 = forms.CharField(label=_("Password again"), strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
        elif first:
            try:  # checked against the account it will be, so "similar to your email" applies
                password_validation.validate_password(first, get_user_model()(username=self.email, email=self.email))
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


@never_cache
@require_http_methods(["GET", "POST"])
def join(request, token):
    try:
        invitation = team.find_invitation(token)
    except team.InvitationUnusable as exc:
        return _render(request, {"problem": exc.message}, status=410)
    account = team.existing_account(invitation)
    context = {"invitation": invitation, "account": account, "role": gettext(Role(invitation.role).label)}
    if account is not None:  # an existing account accepts signed in as itself
        signed_in_as_it = request.user.is_authenticated and request.user.pk == account.pk
        context["sign_in_url"] = f"{reverse('admin:login')}?next={request.path}"
        context["signed_in_as_it"] = signed_in_as_it
        if request.method == "POST" and signed_in_as_it:
            return _joined(request, token, user=request.user, context=context)
        return _render(request, context)
    form = NewPasswordForm(request.POST or None, email=invitation.email)
    context["form"] = form
    if request.method == "POST" and form.is_valid():
        return _joined(request, token, password=form.cleaned_data["password1"], context=context)
    return _render(request, context, status=400 if form.errors else 200)


def _joined(request, token, *, context, user=None, password=""):
    try:
        user = team.accept(token, user=user, password=password)
    except team.TeamError as exc:  # used a moment ago (a double click), or the email is taken now
        return _render(request, {**context, "form": None, "problem": exc.message}, status=409)
    if request.user.pk != user.pk:  # a new account (someone else signed in here is signed out)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("admin:index")


def _render(request, context, status=200):
    response = render(request, "team/join.html", context, status=status)
    # The token must not travel to another site as a referrer; "no-referrer" would also make
    # the browser post this page's form with "Origin: null", which CSRF protection refuses.
    response["Referrer-Policy"] = "same-origin"
    return response
