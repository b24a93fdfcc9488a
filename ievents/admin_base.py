"""The tenant-scoped bases every organizer-facing admin builds on.

An organizer sees and acts on their own organization's rows only, and only as far as their
role there allows (``ievents.roles``). These classes filter querysets and foreign-key
choices by membership and answer Django's permission questions with the role. They live
apart from the ModelAdmins so that every app's admin imports them without importing
another app's admin.
"""

import functools

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ImproperlyConfigured
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext

from .models import Membership, Organization
from .roles import ADD, CHANGE, DELETE, ERASE_ATTENDEE, SEE_SECRETS, VIEW, allows, roles_of

# An admin action's ``permissions=[...]`` (Django asks ``has_<name>_permission``) → what the
# role must allow in each selected row's own organization for the action to touch that row.
# "act" is acting on a record that is never edited (retry, reprocess, test): a change.
# An action without permissions needs a change; a permission not listed here is a mistake.
ROW_ROLE_ACTIONS = {
    "view": VIEW, "add": ADD, "change": CHANGE, "delete": DELETE, "act": CHANGE,
    "see_secrets": SEE_SECRETS, "erase": ERASE_ATTENDEE,
}


def label_inputs(form, *, all_fields: bool = True) -> None:
    """Give inputs an accessible name where the admin draws none: a tabular inline's cells
    (their label is the column's header) and each half of a date-and-time pair."""
    for field in form.fields.values():
        widget = field.widget
        if getattr(widget, "widgets", None):
            for part, sub in zip((gettext("date"), gettext("time")), widget.widgets, strict=False):
                sub.attrs.setdefault("aria-label", f"{field.label} ({part})")
        elif all_fields and not widget.is_hidden:
            widget.attrs.setdefault("aria-label", str(field.label))


class LabelledInlineForm(forms.ModelForm):
    """A tabular inline's form whose inputs carry their column's name (``label_inputs``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        label_inputs(self)


def user_organization_ids(user) -> list[int]:
    return list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))


def request_roles(request) -> dict[int, str]:
    """The user's role in each of their organizations, read once per request."""
    roles = getattr(request, "organization_roles", None)
    if roles is None:
        roles = request.organization_roles = roles_of(request.user)
    return roles


def show_secret_once(request, label: str, secret: str) -> None:
    """Queue a new secret for this response's "shown once" page (``secret_once_page``)."""
    if not hasattr(request, "secrets_shown_once"):
        request.secrets_shown_once = []
    request.secrets_shown_once.append((label, secret))


def secret_once_page(request, admin_site, then: str):
    """A page with each new secret in a box with a copy button, and a link on to ``then``.

    Rendered in the response that made the secrets, never stored to be shown later: once
    this page is left, nobody can read them here again.
    """
    context = {**admin_site.each_context(request), "title": gettext("Copy your new secret now"),
               "secrets": request.secrets_shown_once, "then": then}
    return TemplateResponse(request, "admin/secret_once.html", context)


def permitted_organization_ids(request, action: str, model_label: str = "") -> list[int]:
    """The organizations where the user's role allows ``action`` (on ``model_label``)."""
    return [org for org, role in request_roles(request).items() if allows(role, action, model_label)]


def row_role_actions(func) -> list[str]:
    """What the role must allow, per row, for the admin action ``func`` (``ROW_ROLE_ACTIONS``)."""
    permissions = getattr(func, "allowed_permissions", None) or ["change"]
    unknown = [name for name in permissions if name not in ROW_ROLE_ACTIONS]
    if unknown:
        raise ImproperlyConfigured(f"Admin action {func.__name__!r} asks for {unknown}: say in "
                                   "ievents.admin_base.ROW_ROLE_ACTIONS what the role must allow for it.")
    return [ROW_ROLE_ACTIONS[name] for name in permissions]


def each_row_in_its_organization(func):
    """Wrap the admin action ``func`` so it only ever receives the selected rows of the
    organizations where the user's role allows it.

    Django decides whether an action is offered from the role in *any* organization (there is
    no row yet); a user who owns one organization and only views another would otherwise act
    on both. Rows left out are counted in a warning; if none is left the action does not run.
    """

    @functools.wraps(func)
    def action(modeladmin, request, queryset):
        needed = row_role_actions(func)
        label = modeladmin.opts.label_lower
        allowed = [org for org, role in request_roles(request).items()
                   if all(allows(role, name, label) for name in needed)]
        in_scope = {f"{modeladmin.tenant_path}__in": allowed}
        refused = queryset.exclude(**in_scope).count()
        if refused:
            modeladmin.message_user(request, ngettext(
                "%(count)d selected row belongs to an organization where your role does not allow “%(action)s”: "
                "it was left as it was.",
                "%(count)d selected rows belong to organizations where your role does not allow “%(action)s”: "
                "they were left as they were.", refused,
            ) % {"count": refused, "action": getattr(func, "short_description", func.__name__)}, messages.WARNING)
        permitted = queryset.filter(**in_scope)
        if refused and not permitted.exists():
            return None
        return func(modeladmin, request, permitted)

    return action


class TenantScopedAdmin(admin.ModelAdmin):
    """Base for every organizer-facing admin: filters rows and choices by membership, and
    asks the member's role before viewing, adding, changing or deleting.

    ``tenant_path`` is the lookup from the model to its organization.
    """

    tenant_path = "organization"
    # The screen's name in the back office when the model's own would not do ("Orders").
    title: str | None = None

    def changelist_view(self, request, extra_context=None):
        context = {"title": self.title, **(extra_context or {})} if self.title else extra_context
        return super().changelist_view(request, context)

    def organization_id_of(self, obj) -> int:
        if self.tenant_path == "pk":
            return obj.pk
        *hops, last = self.tenant_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop)
        return getattr(obj, f"{last}_id")

    def role_allows(self, request, action: str, obj=None) -> bool:
        """For an object: the role in its organization; for the screen: the role in any."""
        if request.user.is_superuser:
            return True
        if obj is None or obj.pk is None:
            return bool(permitted_organization_ids(request, action, self.opts.label_lower))
        return allows(request_roles(request).get(self.organization_id_of(obj)), action, self.opts.label_lower)

    def get_actions(self, request):
        """Every action, current and future, acts on each row only as far as the role in that
        row's own organization allows (``each_row_in_its_organization``)."""
        actions = super().get_actions(request)
        if request.user.is_superuser:
            return actions
        return {name: (each_row_in_its_organization(func), name, description)
                for name, (func, _, description) in actions.items()}

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        visible = permitted_organization_ids(request, VIEW, self.opts.label_lower)
        return qs.filter(**{f"{self.tenant_path}__in": visible})

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self.role_allows(request, VIEW, obj)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self.role_allows(request, ADD)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.role_allows(request, CHANGE, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.role_allows(request, DELETE, obj)

    def has_act_permission(self, request, obj=None):
        """For actions on records that are never edited here (retry a delivery, reprocess a
        webhook, test a gate): Django's change permission and a role that may change."""
        codename = get_permission_codename(CHANGE, self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}") and self.role_allows(request, CHANGE, obj)

    def has_see_secrets_permission(self, request, obj=None):
        """For actions that show a secret (``permissions=["see_secrets"]``): owners only."""
        return self.role_allows(request, SEE_SECRETS, obj)

    def response_add(self, request, obj, post_url_continue=None):
        return self._with_secrets(request, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._with_secrets(request, super().response_change(request, obj))

    def response_action(self, request, queryset):
        return self._with_secrets(request, super().response_action(request, queryset))

    def _with_secrets(self, request, response):
        if not getattr(request, "secrets_shown_once", None):
            return response
        return secret_once_page(request, self.admin_site, response.get("Location") or request.get_full_path())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if request.user.is_superuser or field is None:
            return field
        writable = permitted_organization_ids(request, CHANGE, self.opts.label_lower)
        model = db_field.related_model
        if model is Organization:
            field.queryset = field.queryset.filter(pk__in=writable)
            if len(writable) == 1:
                # One organization: nothing to choose, so nothing to get wrong on a first save.
                field.initial = writable[0]
                field.widget = forms.HiddenInput()
        elif hasattr(model, "organization"):
            field.queryset = field.queryset.filter(organization__in=writable)
        return field


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    """A record (history, logs, what was sent): seen and acted on, never edited or deleted here.

    Without change permission the admin shows the page without a misleading Save button.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TenantScopedInline:
    """Mixin for inlines on an organization's object (an event's ticket types, its gate):
    editing them needs the role to change that object; choices stay within the tenant."""

    def _role_allows(self, request, obj) -> bool:
        if request.user.is_superuser:
            return True
        if obj is None or obj.pk is None:
            return bool(permitted_organization_ids(request, CHANGE))
        return allows(request_roles(request).get(obj.organization_id), CHANGE)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._role_allows(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._role_allows(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._role_allows(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if request.user.is_superuser or field is None:
            return field
        if hasattr(db_field.related_model, "organization"):
            # Where the role may change (the inline's rows are changed), not every membership.
            field.queryset = field.queryset.filter(organization__in=permitted_organization_ids(request, CHANGE))
        return field
