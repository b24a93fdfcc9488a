"""A team that manages itself: owners invite by email with a role, change roles, remove
members; the last owner stays; membership alone opens the back office; tenants stay apart."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from ievents import team
from ievents.models import Invitation, Membership, Role
from tests.conftest import make_event, make_organizer

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-and-unusual-passphrase-42"


@pytest.fixture
def owner(client, organization):
    user = make_organizer(organization, username="olga")
    client.force_login(user)
    return user


def invite_through_admin(client, organization, email="mario@example.com", role="manager", language="en"):
    return client.post("/admin/ievents/invitation/add/", {"organization": organization.pk, "email": email,
                                                          "role": role, "language": language})


def link_in(message) -> str:
    return re.search(r"http://\S+/team/join/[\w-]+/", message.body).group(0)


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_an_owner_invites_a_manager_who_sets_a_password_and_sees_only_their_organization(
        client, owner, organization, other_organization, django_capture_on_commit_callbacks):
    theirs = make_event(other_organization, name="Rival Gala")
    mine = make_event(organization, name="Summit")
    with django_capture_on_commit_callbacks(execute=True):
        response = invite_through_admin(client, organization)
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == ("mario@example.com", "manager", owner)
    [message] = mail.outbox
    link = link_in(message)
    assert message.to == ["mario@example.com"] and "Acme Events" in message.subject
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert invitation.token_hash == Invitation.hash(token) and token not in str(Invitation.objects.values())

    client.logout()
    page = client.get(path_of(link))
    assert page.status_code == 200 and page["Referrer-Policy"] == "same-origin"
    html = page.content.decode()
    assert '<label for="id_password1">Password</label>' in html and "Acme Events" in html

    # Two different passwords: an alert, nothing created.
    bad = client.post(path_of(link), {"password1": PASSWORD, "password2": PASSWORD + "x"})
    assert bad.status_code == 400 and 'role="alert"' in bad.content.decode()
    assert not get_user_model().objects.filter(email="mario@example.com").exists()

    joined = client.post(path_of(link), {"password1": PASSWORD, "password2": PASSWORD})
    assert joined.status_code == 302 and joined["Location"] == "/admin/"
    mario = get_user_model().objects.get(email="mario@example.com")
    assert mario.is_staff and not mario.is_superuser and not mario.groups.exists()  # no group to remember
    assert Membership.objects.get(user=mario).role == Role.MANAGER

    # Signed in already; and with the password chosen, from a new browser.
    client.logout()
    signed_in = client.post("/admin/login/", {"username": "mario@example.com", "password": PASSWORD, "next": "/admin/"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"  # the real login form (django-axes)
    events = client.get("/admin/ievents/event/").content.decode()
    assert "Summit" in events and "Rival Gala" not in events
    assert client.get(f"/admin/ievents/event/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/ievents/event/{theirs.pk}/change/", follow=True).redirect_chain[-1][0] == "/admin/"
    # A manager neither invites nor sees the team.
    assert client.get("/admin/ievents/invitation/add/").status_code == 403
    assert client.get("/admin/ievents/membership/").status_code == 403

    # The link worked once.
    client.logout()
    again = client.post(path_of(link), {"password1": PASSWORD, "password2": PASSWORD})
    assert again.status_code == 410 and "accepted already" in again.content.decode()


def test_the_invitation_email_is_in_the_language_the_owner_chose(client, owner, organization,
                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invite_through_admin(client, organization, language="pt-pt")
    [message] = mail.outbox
    assert "Foi convidado" in message.subject and "como Gestor" in message.body


def test_the_email_language_defaults_to_the_owners(client, owner, organization):
    page = client.get("/admin/ievents/invitation/add/", HTTP_ACCEPT_LANGUAGE="pt-PT").content.decode()
    assert re.search(r'<option value="pt-pt" selected>', page)


def test_the_join_page_speaks_portuguese(client, organization):
    invitation = team.invite(organization, "rui@example.com", Role.VIEWER, language="pt-pt")
    token = _token_of(invitation)
    html = client.get(f"/team/join/{token}/", HTTP_ACCEPT_LANGUAGE="pt-PT").content.decode()
    assert 'lang="pt-PT"' in html and "Juntar-se à equipa" in html and "Palavra-passe" in html


def _token_of(invitation) -> str:
    """A fresh token for an invitation made in a test (the real one went by email only)."""
    token = "t" + str(invitation.pk) + "-" + "x" * 40
    Invitation.objects.filter(pk=invitation.pk).update(token_hash=Invitation.hash(token))
    return token


@pytest.mark.parametrize("how", ["expired", "revoked", "unknown"])
def test_an_unusable_link_creates_nothing(client, organization, how):
    invitation = team.invite(organization, "rui@example.com", Role.MANAGER, language="en")
    token = _token_of(invitation)
    if how == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif how == "revoked":
        assert team.revoke(invitation)
    else:
        token = "nothing-like-it"
    response = client.post(f"/team/join/{token}/", {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 410 and 'role="alert"' in response.content.decode()
    assert not get_user_model().objects.filter(email="rui@example.com").exists()


def test_an_owner_revokes_an_invitation_in_the_admin(client, owner, organization):
    invitation = team.invite(organization, "rui@example.com", Role.MANAGER, language="en")
    client.post("/admin/ievents/invitation/", {"action": "revoke_invitations", "_selected_action": [invitation.pk]})
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert "Revoked" in client.get("/admin/ievents/invitation/").content.decode()


def test_an_existing_account_accepts_signed_in(client, organization, other_organization):
    existing = make_organizer(other_organization, username="rita")
    existing.email = "rita@example.com"
    existing.save()
    token = _token_of(team.invite(organization, "Rita@example.com", Role.VIEWER, language="en"))
    page = client.get(f"/team/join/{token}/").content.decode()
    assert "Sign in to accept" in page and "password1" not in page
    assert client.post(f"/team/join/{token}/").status_code == 200  # not signed in: nothing happens
    assert not Membership.objects.filter(user=existing, organization=organization).exists()
    client.force_login(existing)
    assert client.post(f"/team/join/{token}/").status_code == 302
    assert Membership.objects.get(user=existing, organization=organization).role == Role.VIEWER


def test_someone_else_signed_in_cannot_take_the_invitation(client, organization, other_organization):
    existing = make_organizer(other_organization, username="rita")
    existing.email = "rita@example.com"
    existing.save()
    intruder = make_organizer(other_organization, username="ivo")
    token = _token_of(team.invite(organization, "rita@example.com", Role.OWNER, language="en"))
    client.force_login(intruder)
    client.post(f"/team/join/{token}/")
    assert not Membership.objects.filter(organization=organization, user__in=[intruder, existing]).exists()


# --- Roles and the last owner ------------------------------------------------------------
def test_an_owner_changes_a_role_and_removes_a_member(client, owner, organization):
    mario = make_organizer(organization, username="mario")
    membership = Membership.objects.get(user=mario)
    response = client.post(f"/admin/ievents/membership/{membership.pk}/change/", {"role": "viewer"})
    assert response.status_code == 302
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER
    response = client.post(f"/admin/ievents/membership/{membership.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    mario.refresh_from_db()
    assert not mario.is_staff  # a member of nothing no longer opens the admin


def test_the_last_owner_can_be_neither_demoted_nor_removed(client, owner, organization):
    own = Membership.objects.get(user=owner)
    response = client.post(f"/admin/ievents/membership/{own.pk}/change/", {"role": "manager"})
    assert response.status_code == 200 and "at least one owner" in response.content.decode()
    assert client.post(f"/admin/ievents/membership/{own.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post("/admin/ievents/membership/", {"action": "delete_selected", "_selected_action": [own.pk],
                                               "post": "yes"})
    assert Membership.objects.get(pk=own.pk).role == Role.OWNER
    with pytest.raises(team.LastOwner):
        team.change_role(own, Role.VIEWER)
    with pytest.raises(team.LastOwner):
        team.remove_member(own)
    # With a second owner, the first may step down.
    Membership.objects.filter(user=make_organizer(organization, username="otto")).update(role=Role.OWNER)
    assert team.change_role(own, Role.MANAGER).role == Role.MANAGER


# --- Tenants apart ------------------------------------------------------------------------
def test_an_owner_never_reaches_another_organizations_team(client, owner, organization, other_organization):
    rival = make_organizer(other_organization, username="rival")
    theirs = Membership.objects.get(user=rival)
    their_invitation = team.invite(other_organization, "x@example.com", Role.MANAGER, language="en")
    listing = client.get("/admin/ievents/membership/").content.decode()
    assert "olga" in listing and "rival" not in listing
    assert client.get(f"/admin/ievents/membership/{theirs.pk}/change/", follow=True).redirect_chain[-1][0] == "/admin/"
    client.post(f"/admin/ievents/membership/{theirs.pk}/change/", {"role": "viewer"})
    client.post(f"/admin/ievents/membership/{theirs.pk}/delete/", {"post": "yes"})
    assert Membership.objects.get(pk=theirs.pk).role == Role.OWNER
    response = invite_through_admin(client, other_organization, email="spy@example.com")
    assert response.status_code == 200 and not Invitation.objects.filter(email="spy@example.com").exists()
    assert "x@example.com" not in client.get("/admin/ievents/invitation/").content.decode()
    client.post("/admin/ievents/invitation/", {"action": "revoke_invitations",
                                               "_selected_action": [their_invitation.pk]})
    assert Invitation.objects.get(pk=their_invitation.pk).revoked_at is None
    # Moving oneself into their organization through the membership form does nothing.
    own = Membership.objects.get(user=owner)
    client.post(f"/admin/ievents/membership/{own.pk}/change/", {"organization": other_organization.pk,
                                                                "role": "owner", "user": rival.pk})
    assert list(Membership.objects.filter(user=owner).values_list("organization_id", "role")) == [
        (organization.pk, "owner")]


@pytest.mark.parametrize("role", ["manager", "viewer"])
def test_managers_and_viewers_cannot_invite(client, organization, role):
    user = make_organizer(organization, username=f"{role}-1")
    Membership.objects.filter(user=user).update(role=role)
    client.force_login(user)
    assert client.get("/admin/ievents/invitation/add/").status_code == 403
    assert invite_through_admin(client, organization).status_code == 403
    assert not Invitation.objects.exists()


def test_inviting_a_member_again_is_a_form_error(client, owner, organization):
    owner.email = "olga@example.com"
    owner.save()
    response = invite_through_admin(client, organization, email="OLGA@example.com")
    assert response.status_code == 200 and "already a member" in response.content.decode()
    assert not Invitation.objects.exists()


def test_inviting_a_member_known_by_username_is_a_form_error_too(client, owner, organization):
    make_organizer(organization, username="rui@example.com")
    response = invite_through_admin(client, organization, email="rui@example.com")
    assert response.status_code == 200 and "already a member" in response.content.decode()
    assert not Invitation.objects.exists()


def test_permissions_come_from_membership_only(organization):
    staff = get_user_model().objects.create_user("staff-only", is_staff=True)  # a member of nothing
    assert not staff.has_perm("checkout.view_checkoutsession") and not staff.has_module_perms("checkout")
    member = make_organizer(organization, username="member")
    member = get_user_model().objects.get(pk=member.pk)
    assert member.has_perm("checkout.view_checkoutsession") and member.has_module_perms("ievents")
    assert not member.has_perm("ievents.add_organization") and not member.has_perm("auth.change_user")
