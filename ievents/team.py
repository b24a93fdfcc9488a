"""An organization's team, managed by its owners: invitations, roles, leaving.

Membership alone decides what a member sees: a member is staff (the admin lets them in)
and holds the admin's model permissions (``ievents.auth.MembershipPermissions``); their role
(``ievents.roles``) and the tenant filters (``ievents.admin_base``) decide the rest. No
operator step, no group to remember.

Every change that could leave an organization without an owner locks the organization's
row first, so two owners demoting each other at once cannot both succeed.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from . import languages
from .models import Invitation, Membership, Organization, Role

log = logging.getLogger(__name__)

# How long an invitation's link works: long enough for a week away, short enough that a
# forgotten email in an old inbox opens nothing.
INVITATION_LIFETIME = timedelta(days=7)


class TeamError(Exception):
    """A change to the team that is refused, with a message for the owner."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


class LastOwner(TeamError):
    def __init__(self):
        super().__init__(gettext_lazy("An organization always keeps at least one owner: make someone else an owner "
                                      "first."))


class InvitationUnusable(TeamError):
    """The link is unknown, used, revoked or expired (the page says which, never whose)."""


def _lock_organization(organization_id: int) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization_id)


def _owners(organization_id: int) -> int:
    return Membership.objects.filter(organization_id=organization_id, role=Role.OWNER).count()


def sync_staff(user) -> None:
    """A member may open the admin; someone who is no member anywhere may not (superusers stay)."""
    member = Membership.objects.filter(user=user).exists()
    if user.is_superuser or user.is_staff == member:
        return
    user.is_staff = member
    user.save(update_fields=["is_staff"])


# --- Invitations ----------------------------------------------------------------------------
def is_member_email(organization: Organization, email: str) -> bool:
    """Whether someone with this email (or username) is on the organization's team already."""
    members = Membership.objects.filter(organization=organization)
    return members.filter(Q(user__email__iexact=email) | Q(user__username__iexact=email)).exists()


def invite(organization: Organization, email: str, role: str, *, language: str, invited_by=None) -> Invitation:
    """Invite ``email`` to ``organization`` as ``role``; the email (in ``language``) goes out
    after commit. An earlier invitation of the same person to the same team stops working."""
    email = email.strip()
    if role not in Role.values:
        raise TeamError(gettext_lazy("Choose a role: owner, manager or viewer."))
    if is_member_email(organization, email):
        raise TeamError(gettext_lazy("This person is already a member of the team."))
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        Invitation.objects.filter(organization=organization, email__iexact=email, accepted_at__isnull=True,
                                  revoked_at__isnull=True).update(revoked_at=now)
        invitation = Invitation.objects.create(
            organization=organization, email=email, role=role, language=languages.supported(language),
            token_hash=Invitation.hash(token), invited_by=invited_by, expires_at=now + INVITATION_LIFETIME,
        )
        transaction.on_commit(lambda: send_invitation(invitation, token))
    log.info("invitation %s to organization %s as %s", invitation.pk, organization.slug, role)
    return invitation


def invitation_link(token: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("team_join", args=[token])


def send_invitation(invitation: Invitation, token: str) -> None:
    """The invitation email, in the language the owner chose for the invitee."""
    with translation.override(invitation.language):
        inviter = invitation.invited_by.get_full_name() or invitation.invited_by.username \
            if invitation.invited_by else invitation.organization.name
        context = {"organization": invitation.organization.name, "inviter": inviter,
                   "role": Role(invitation.role).label, "link": invitation_link(token),
                   "days": INVITATION_LIFETIME.days}
        subject = gettext("You are invited to join %(organization)s on iEvents") % context
        body = gettext(
            "%(inviter)s invites you to join the team of %(organization)s on iEvents as %(role)s.\n\n"
            "Open this link to accept and choose your password:\n%(link)s\n\n"
            "The link works once, for %(days)s days. If you did not expect this email, ignore it."
        ) % {**context, "role": gettext(context["role"])}
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])


def revoke(invitation: Invitation) -> bool:
    """Stop the link from working. False if it was accepted or revoked already."""
    return bool(Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True)
                .update(revoked_at=timezone.now()))


def find_invitation(token: str) -> Invitation:
    """The usable invitation behind ``token``; raises ``InvitationUnusable`` saying why."""
    invitation = (Invitation.objects.select_related("organization").filter(token_hash=Invitation.hash(token))
                  .first())
    if invitation is None:
        raise InvitationUnusable(gettext_lazy("This invitation link is not valid. Ask for a new invitation."))
    if invitation.accepted_at is not None:
        raise InvitationUnusable(gettext_lazy("This invitation was accepted already. Sign in to continue."))
    if invitation.revoked_at is not None:
        raise InvitationUnusable(gettext_lazy("This invitation was withdrawn. Ask for a new invitation."))
    if not invitation.usable():
        raise InvitationUnusable(gettext_lazy("This invitation has expired. Ask for a new invitation."))
    return invitation


def existing_account(invitation: Invitation):
    """The account already using the invited email, if any (it accepts signed in)."""
    User = get_user_model()
    return (User.objects.filter(email__iexact=invitation.email).order_by("pk").first()
            or User.objects.filter(username__iexact=invitation.email).first())


def accept(token: str, *, user=None, password: str = ""):
    """Join the team: as ``user`` (signed in, with the invited email) or as a new account with
    ``password``. Returns the member's user. The invitation is locked, so a double click
    joins once and the second is told the link was used."""
    with transaction.atomic():
        invitation = find_invitation(token)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not invitation.usable():
            raise InvitationUnusable(gettext_lazy("This invitation was accepted already. Sign in to continue."))
        account = existing_account(invitation)
        if user is None:
            if account is not None:
                raise TeamError(gettext_lazy("An account with this email exists: sign in to accept."))
            user = get_user_model().objects.create_user(invitation.email.lower(), email=invitation.email,
                                                        password=password)
        elif account is None or account.pk != user.pk:
            raise TeamError(gettext_lazy("This invitation is for another email address."))
        _lock_organization(invitation.organization_id)
        membership, created = Membership.objects.get_or_create(
            user=user, organization=invitation.organization, defaults={"role": invitation.role})
        if not created and membership.role != invitation.role and membership.role != Role.OWNER:
            membership.role = invitation.role  # an owner is never demoted by accepting an invitation
            membership.save(update_fields=["role"])
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        sync_staff(user)
    log.info("invitation %s accepted: user %s joined organization %s", invitation.pk, user.pk,
             invitation.organization.slug)
    return user


# --- Members --------------------------------------------------------------------------------
def change_role(membership: Membership, role: str) -> Membership:
    """Give a member another role; the last owner stays an owner (``LastOwner``)."""
    if role not in Role.values:
        raise TeamError(gettext_lazy("Choose a role: owner, manager or viewer."))
    with transaction.atomic():
        _lock_organization(membership.organization_id)
        current = Membership.objects.get(pk=membership.pk)
        if current.role == Role.OWNER and role != Role.OWNER and _owners(current.organization_id) == 1:
            raise LastOwner()
        current.role = role
        current.save(update_fields=["role"])
    return current


def remove_member(membership: Membership) -> None:
    """Take a member off the team (their account stays); never the last owner (``LastOwner``)."""
    with transaction.atomic():
        _lock_organization(membership.organization_id)
        current = Membership.objects.filter(pk=membership.pk).select_related("user").first()
        if current is None:
            return
        if current.role == Role.OWNER and _owners(current.organization_id) == 1:
            raise LastOwner()
        current.delete()
        sync_staff(current.user)


def is_last_owner(membership: Membership) -> bool:
    return membership.role == Role.OWNER and _owners(membership.organization_id) == 1
