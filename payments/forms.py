"""The organizer's per-provider settings form: secrets go in, never come back out in full."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ievents.crypto import mask

from .base import ProviderConfig
from .models import IntegrationSettings
from .registry import PROVIDER_CLASSES

# Every credential any provider declares, with the form's label for it.
ALL_CREDENTIALS = {name: label for cls in PROVIDER_CLASSES.values() for name, label in cls.credential_fields.items()}


def missing_credentials(provider: str, credentials: dict) -> list[str]:
    """The labels of what ``provider`` still needs before it can take a payment."""
    needed = PROVIDER_CLASSES[provider].credential_fields
    any_one = PROVIDER_CLASSES[provider].any_one_credential_of
    if any_one:
        return [] if any(credentials.get(name) for name in any_one) else [gettext(" or ").join(str(needed[n]) for n in any_one)]
    return [str(label) for name, label in needed.items() if not credentials.get(name)]


def _write_only(label: str) -> forms.CharField:
    return forms.CharField(label=label, required=False, strip=True,
                           widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))


# One write-only input, ``cred_<name>``, per credential any provider declares.
CredentialInputs = type("CredentialInputs", (forms.Form,),
                        {f"cred_{name}": _write_only(label) for name, label in ALL_CREDENTIALS.items()})


class IntegrationSettingsForm(CredentialInputs, forms.ModelForm):
    """Credentials and the webhook secret as write-only fields: blank keeps what is stored."""

    webhook_secret_input = _write_only(_("Webhook signing secret"))
    clear_webhook_secret = forms.BooleanField(
        label=_("Remove the stored webhook secret (fall back to the platform's)"), required=False)

    class Meta:
        model = IntegrationSettings
        fields = ["organization", "provider", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stored = json.loads(self.instance.credentials) if self.instance.credentials else {}
        provider = self.instance.provider if self.instance.pk else None
        for name in ALL_CREDENTIALS:
            current = self.stored.get(name, "")
            if f"cred_{name}" in self.fields:
                self.fields[f"cred_{name}"].help_text = (
                    gettext("Stored: %(masked)s. Leave blank to keep it.") % {"masked": mask(current)} if current
                    else gettext("Not set."))
        secret = self.instance.webhook_secret
        help_text = PROVIDER_CLASSES[provider].webhook_secret_help if provider in PROVIDER_CLASSES else ""
        stored = (gettext("Stored: %(masked)s. Leave blank to keep it.") % {"masked": mask(secret)} if secret
                  else gettext("Not set."))
        self.fields["webhook_secret_input"].help_text = f"{help_text} {stored}".strip()

    def clean(self):
        cleaned = super().clean()
        provider = cleaned.get("provider") or self.instance.provider
        if provider:
            allowed = PROVIDER_CLASSES[provider].credential_fields
            extra = [name for name in ALL_CREDENTIALS if cleaned.get(f"cred_{name}") and name not in allowed]
            for name in extra:
                self.add_error(f"cred_{name}", gettext("%(provider)s does not use this.") % {
                    "provider": PROVIDER_CLASSES[provider].label})
            if cleaned.get("enabled") and not extra:
                self._check_credentials(provider)
            typed = [name for name in allowed if cleaned.get(f"cred_{name}")]
            if typed and not self.errors:
                self._ask_provider(provider, typed)
        return cleaned

    def _ask_provider(self, provider: str, typed: list[str]) -> None:
        """New credentials are tried on the provider before they are saved (Stripe: one
        authenticated read), so a mistyped or revoked key is found here, not by an attendee."""
        config = ProviderConfig(self.instance.organization_id, self.credentials_after_save(),
                                self.instance.webhook_secret, False)
        problem = PROVIDER_CLASSES[provider](config).check_credentials()
        if problem:
            self.add_error(f"cred_{typed[0]}", problem)

    def _check_credentials(self, provider: str) -> None:
        """An enabled provider is offered to attendees: it must be able to take their money."""
        credentials = self.credentials_after_save()
        # Without credentials of its own, the organization uses the platform's (as config_for does).
        missing = missing_credentials(provider, credentials or PROVIDER_CLASSES[provider].environment_config().credentials)
        if missing:
            self.add_error("enabled", gettext("%(provider)s needs its %(missing)s before it can be enabled. Enter it, or "
                                              "untick Enabled to save it for later.") % {
                "provider": PROVIDER_CLASSES[provider].label, "missing": ", ".join(str(m) for m in missing)})

    def credentials_after_save(self) -> dict:
        credentials = dict(self.stored)
        for name in ALL_CREDENTIALS:
            value = self.cleaned_data.get(f"cred_{name}")
            if value:
                credentials[name] = value
        return credentials

    def save(self, commit=True):
        row = super().save(commit=False)
        credentials = self.credentials_after_save()
        row.credentials = json.dumps(credentials) if credentials else ""
        if self.cleaned_data.get("clear_webhook_secret"):
            row.webhook_secret = ""
        elif self.cleaned_data.get("webhook_secret_input"):
            row.webhook_secret = self.cleaned_data["webhook_secret_input"]
        if commit:
            row.save()
        return row
