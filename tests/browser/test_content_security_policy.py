"""Every attendee page and every back-office screen loads under the Content-Security-Policy
without a single violation: no inline script, inline event handler or inline style is left
that would need 'unsafe-inline'.

Chromium reports each blocked thing twice: a ``securitypolicyviolation`` event in the page
(recorded by a listener Playwright adds before the page's own scripts) and a console error
("Refused to … because it violates the following Content Security Policy directive").
Both are collected on every page visited; the first test shows the collection catches a
violation, so the others' empty lists mean something.
"""

import re

import pytest
from django.urls import include, path
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from checkout.models import CheckoutSession
from ievents.models import Membership
from tests.admin.orders import make_order
from tests.browser.admin_pages import log_in
from tests.browser.test_purchase import choose_tickets, fill_details, pay_with_sandbox
from tests.conftest import make_organizer

pytestmark = pytest.mark.django_db(transaction=True)

RECORD_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("Content Security Policy violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline")
                + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


def boom(request):
    raise RuntimeError("the database went away")


urlpatterns = [path("boom/", boom), path("", include("ievents.urls"))]


@pytest.fixture
def violations(page):
    """What the policy blocked on ``page``, as messages (a list the test reads)."""
    found = []
    page.on("console", lambda message: found.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text else None)
    page.add_init_script(RECORD_VIOLATIONS)
    return found


def visit(page, url: str, status: int = 200):
    response = page.goto(url)
    assert response.status == status, url
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy, (url, policy)
    assert "unsafe-inline" not in policy
    page.wait_for_load_state("load")
    return response


def test_the_collector_sees_an_inline_script_and_an_inline_style_being_blocked(page, site, event, violations):
    visit(page, event.get_absolute_url())
    page.evaluate("""() => {
      const script = document.createElement("script");
      script.textContent = "window.ran = true";
      document.body.appendChild(script);
      const div = document.createElement("div");
      div.setAttribute("style", "color: red");
      document.body.appendChild(div);
    }""")
    page.wait_for_timeout(100)  # the reports are queued as tasks
    assert not page.evaluate("() => window.ran === true")
    assert any("script-src" in v for v in violations) and any("style-src" in v for v in violations), violations


def test_every_attendee_page_loads_without_a_violation(page, site, settings, event, violations, shot):
    settings.ROOT_URLCONF = __name__
    visit(page, "/")
    choose_tickets(page, shot, event, quantity=1)
    fill_details(page, shot)
    pay_with_sandbox(page, shot)  # the review page, then the sandbox provider's page
    page.get_by_role("button", name="Simulate success").click()
    expect(page.get_by_role("heading", name="You're going!")).to_be_visible()
    session = CheckoutSession.objects.get()
    visit(page, f"/c/{session.public_id}/status/")
    # In Portuguese too (the switcher is a form posting to set_language).
    page.get_by_role("button", name="Português").click()
    expect(page.locator("html")).to_have_attribute("lang", "pt-PT")
    visit(page, "/c/cs_doesnotexist/", status=404)
    visit(page, "/boom/", status=500)
    visit(page, "/e/ev_doesnotexist/", status=404)
    assert violations == []


def admin_links(page) -> list[str]:
    """Every screen the index lists (each list and its add form), as paths."""
    hrefs = page.locator("#content-main a, #content-related a").evaluate_all("links => links.map(a => a.href)")
    # A link to a part of the same page ("#developers") is no other screen.
    return sorted({re.sub(r"^https?://[^/]+", "", href).split("#")[0] for href in hrefs if "/admin/" in href})


def test_every_back_office_screen_loads_without_a_violation(page, site, event, organizer, organization, violations,
                                                            shot):
    session = make_order(event)  # paid and completed, as the attendee test buys one in the browser

    log_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    screens = admin_links(page)
    print("screens visited:", screens)
    assert "/admin/checkout/checkoutsession/" in screens and "/admin/ievents/organization/" in screens
    for screen in screens:
        visit(page, screen)
        # The first row of each list opens its change page (an order, the event, the organization…).
        first = page.locator("#result_list tbody th a").first
        if first.count():
            first.click()
            page.wait_for_load_state("load")
    for screen in (f"/admin/checkout/checkoutsession/{session.pk}/change/",
                   f"/admin/ievents/event/{event.pk}/change/",
                   f"/admin/ievents/organization/{organization.pk}/change/",
                   "/admin/password_change/", "/admin/two-factor/"):
        visit(page, screen)
    # The order actions' own pages (their forms).
    for action in ("refund", "resend"):
        visit(page, f"/admin/checkout/checkoutsession/{session.pk}/{action}/")

    # Two-factor sign-in: set up (QR code), recovery codes, then the code after the password.
    visit(page, "/admin/two-factor/setup/")
    shot("two-factor-setup", page)
    device = TOTPDevice.objects.get(user=organizer, confirmed=False)
    page.get_by_label("Authentication code").fill(f"{totp(device.bin_key):06d}")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    shot("recovery-codes", page)
    page.get_by_role("link", name="I have saved them — continue").click()
    page.locator("#logout-form button").click()
    log_in(page)
    expect(page.get_by_label("Authentication code")).to_be_visible()
    shot("two-factor-verify", page)
    device.refresh_from_db()
    page.get_by_label("Authentication code").fill(f"{totp(device.bin_key, drift=1):06d}")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert violations == []


def test_the_lock_out_page_has_no_violation(page, site, settings, organization, violations):
    settings.AXES_FAILURE_LIMIT = 2
    make_organizer(organization, username="rui")
    Membership.objects.filter(user__username="rui").update(role="viewer")
    for _ in range(2):
        visit(page, "/admin/login/")
        page.get_by_label("Username").fill("rui")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed login attempts")
    assert violations == []


def test_the_api_docs_load_without_a_violation(page, site, violations):
    visit(page, "/v1/docs")
    expect(page.get_by_text("iEvents checkout API").first).to_be_visible()
    assert violations == []
