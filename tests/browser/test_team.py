"""A team that invites itself, in a real browser: an owner invites a manager from the Team
screen; the manager opens the emailed link, sets a password, signs in and sees only their
organization — with no operator step and no group."""

import os
import re
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import expect

from ievents.models import Membership, Role
from tests.browser.admin_pages import log_in
from tests.browser.test_attendee import check
from tests.conftest import make_event

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-and-unusual-passphrase-42"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def docs_shot(page, name: str) -> None:
    """With TEAM_DOCS=1, the screenshots docs/admin.md shows."""
    if os.environ.get("TEAM_DOCS") == "1":
        page.screenshot(path=str(DOCS_IMG / f"{name}.png"), full_page=True, scale="css")


def test_an_owner_invites_a_manager_who_accepts_and_sees_only_their_organization(
        page, new_page, shot, organizer, organization, other_organization):
    make_event(organization, name="Porto Summit")
    make_event(other_organization, name="Rival Gala")
    log_in(page, shot=shot)
    page.goto("/admin/ievents/membership/")
    page.get_by_role("link", name="Invite someone").click()
    page.get_by_label("Email:", exact=True).fill("mario@example.com")
    page.get_by_label("Role:", exact=True).select_option("manager")
    page.get_by_label("Language of the email").select_option("pt-pt")
    shot("invite")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("The invitation was sent to mario@example.com")
    shot("invitations")

    [message] = mail.outbox
    link = re.search(r"http://\S+/team/join/[\w-]+/", message.body).group(0)
    assert "Gestor" in message.body  # in the language the owner chose

    invitee = new_page(locale="pt-PT", extra_http_headers={"Accept-Language": "pt-PT"})
    invitee.goto(link)
    expect(invitee.locator("html")).to_have_attribute("lang", "pt-PT")
    expect(invitee.get_by_role("heading", name="Juntar-se à equipa")).to_be_visible()
    check(invitee, "join", shot)  # axe: no serious violation; targets big enough
    docs_shot(invitee, "team-join-pt")
    invitee.get_by_label("Palavra-passe", exact=True).fill(PASSWORD)
    invitee.get_by_label("Palavra-passe outra vez").fill(PASSWORD + "!")
    invitee.get_by_role("button", name="Juntar-se à equipa").click()
    expect(invitee.get_by_role("alert")).to_contain_text("As duas palavras-passe são diferentes")
    check(invitee, "passwords-differ", shot)
    invitee.get_by_label("Palavra-passe", exact=True).fill(PASSWORD)
    invitee.get_by_label("Palavra-passe outra vez").fill(PASSWORD)
    invitee.get_by_role("button", name="Juntar-se à equipa").click()
    invitee.wait_for_url(re.compile(r"/admin/$"))
    assert Membership.objects.get(user__email="mario@example.com").role == Role.MANAGER
    page.goto("/admin/ievents/membership/")  # the owner's Team screen, Mário on it
    expect(page.get_by_text("mario@example.com").first).to_be_visible()
    docs_shot(page, "admin-team")

    # Signed out, then in with the password just chosen: only their organization's events.
    fresh = new_page()
    fresh.goto("/admin/")
    fresh.get_by_label("Username").fill("mario@example.com")
    fresh.get_by_label("Password").fill(PASSWORD)
    fresh.get_by_role("button", name="Log in").click()
    fresh.goto("/admin/ievents/event/")
    expect(fresh.get_by_role("link", name="Porto Summit")).to_be_visible()
    expect(fresh.get_by_text("Rival Gala")).to_have_count(0)
    shot("manager-events", fresh)
