"""The Team and Invitations screens: an owner invites people, changes their roles, removes
them. Owners only (``ievents.roles.OWNER_ONLY_MODELS``), each within their own
organizations; the rules are in ``ievents.team``.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import languages, team
from .admin_base import TenantScopedAdmin
from .models import Invitation, Membership, Role


class TeamMemberForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "organization", "role"]

    def clean_role(self):
        role = self.cleaned_data["role"]
        if self.instance.pk and role != Role.OWNER and team.is_last_owner(self.instance):
            raise forms.ValidationError(team.LastOwner().message)
        return role


@admin.register(Membership)
class TeamAdmin(TenantScopedAdmin):
    """The organization's members and their roles. People join by invitation (the platform's
    operators may still add a membership by hand); the last owner can be neither demoted nor
    removed."""

    title = _("Team")
    form = TeamMemberForm
    list_display = ["member", "email", "organization", "role"]
    list_filter = ["role"]
    change_list_template = "admin/ievents/membership/change_list.html"

    @admin.display(description=_("Member"), ordering="user__username")
    def member(self, obj):
        return obj.user.get_full_name() or obj.user.username

    @admin.display(description=_("Email"), ordering="user__email")
    def email(self, obj):
        return obj.user.email

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "organization")

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser and obj is None:
            return []
        return ["user", "organization"]

    def has_add_permission(self, request):
        return request.user.is_superuser  # owners invite (Invitations)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and team.is_last_owner(obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            team.sync_staff(obj.user)
            return
        try:
            team.change_role(obj, form.cleaned_data["role"])
        except team.TeamError as exc:  # another owner was demoted meanwhile
            messages.error(request, exc.message)

    def delete_model(self, request, obj):
        team.remove_member(obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            try:
                team.remove_member(membership)
            except team.TeamError as exc:
                messages.error(request, f"{membership.user}: {exc.message}")

    def changelist_view(self, request, extra_context=None):
        can_invite = request.user.is_superuser or bool(
            self.admin_site.get_model_admin(Invitation).has_add_permission(request))
        context = {"invite_url": reverse("admin:ievents_invitation_add") if can_invite else None,
                   **(extra_context or {})}
        return super().changelist_view(request, context)


class InvitationForm(forms.ModelForm):
    language = forms.ChoiceField(
        label=_("Language of the email"), choices=settings.LANGUAGES,
        help_text=_("The invitation is written in it; the new member can switch later."))

    class Meta:
        model = Invitation
        fields = ["organization", "email", "role", "language"]

    def clean(self):
        cleaned = super().clean()
        organization, email = cleaned.get("organization"), cleaned.get("email")
        if organization and email and team.is_member_email(organization, email.strip()):
            self.add_error("email", gettext("This person is already a member of the team."))
        return cleaned


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invite someone by email with a role; the link in the email sets their password (or lets
    an existing account accept), works once, expires, and can be revoked here."""

    title = _("Invitations")
    form = InvitationForm
    list_display = ["email", "role", "organization", "status", "expires_at", "invited_by"]
    list_filter = ["role"]
    readonly_fields = ["status", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]
    actions = ["revoke_invitations"]

    @admin.display(description=_("Status"))
    def status(self, obj):
        if obj.accepted_at:
            return gettext("Accepted")
        if obj.revoked_at:
            return gettext("Revoked")
        if obj.expires_at and obj.expires_at <= timezone.now():
            return gettext("Expired")
        return gettext("Waiting for an answer")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organization", "invited_by")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["organization", "email", "role", "language"]
        return ["email", "role", "organization", *self.readonly_fields]

    def get_changeform_initial_data(self, request):
        return {"language": languages.active(), "role": Role.MANAGER, **super().get_changeform_initial_data(request)}

    def has_change_permission(self, request, obj=None):
        return False  # an invitation sent is not edited: revoke it and invite again

    def has_delete_permission(self, request, obj=None):
        return False  # kept: who invited whom, and when

    def save_model(self, request, obj, form, change):
        invitation = team.invite(obj.organization, obj.email, obj.role, language=form.cleaned_data["language"],
                                 invited_by=request.user)
        obj.pk = invitation.pk
        messages.success(request, gettext("The invitation was sent to %(email)s.") % {"email": invitation.email})

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:ievents_invitation_changelist"))

    @admin.action(description=_("Revoke the selected invitations"), permissions=["act"])
    def revoke_invitations(self, request, queryset):
        revoked = sum(team.revoke(invitation) for invitation in queryset)
        messages.success(request, gettext("Invitations revoked: %(count)s.") % {"count": revoked})
