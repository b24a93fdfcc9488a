"""Two-factor sign-in to the back office, through the real login: password, then a code from
the authenticator app (computed here as the app does, with ``django_otp.oath.totp``), or a
recovery code; an owner can require it of their organization's members."""

import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ievents.models import Membership
from tests.conftest import ORGANIZER_PASSWORD, make_organizer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def code_for(device, steps_ahead=0):
    """The code the app shows now (``steps_ahead``: 30 s periods later, within the tolerance)."""
    device.refresh_from_db()
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift + steps_ahead):06d}"


def password_login(client, username="ana", next_url="/admin/"):
    response = client.post(f"/admin/login/?next={next_url}",
                           {"username": username, "password": ORGANIZER_PASSWORD, "next": next_url})
    assert response.status_code == 302, response.content
    return response


def enrol(client):
    """Set up the app on the setup page; returns the device and the recovery codes shown."""
    page = client.get("/admin/two-factor/setup/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user__username="ana", confirmed=False)
    text = page.content.decode()
    assert "<svg" in text  # the QR code
    shown_secret = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', text).group(1).replace(" ", "")
    import base64

    assert base64.b32decode(shown_secret + "=" * (-len(shown_secret) % 8)) == device.bin_key
    response = client.post("/admin/two-factor/setup/", {"code": code_for(device), "device": device.pk,
                                                        "next": "/admin/"})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    return device, codes


@pytest.fixture
def enrolled(organizer):
    client = Client()
    password_login(client)
    device, codes = enrol(client)
    return device, codes


def test_a_member_enrols_and_then_signs_in_with_password_then_code(organizer):
    client = Client()
    password_login(client)
    device, codes = enrol(client)
    device.refresh_from_db()
    assert device.confirmed and len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/admin/").status_code == 200

    # Next time: the password alone leads to the code page, and nothing else opens.
    again = Client()
    response = password_login(again, next_url="/admin/checkout/checkoutsession/")
    assert again.get("/admin/checkout/checkoutsession/")["Location"].startswith("/admin/two-factor/verify/")
    for path in ("/admin/", "/admin/ievents/event/", "/admin/password_change/", "/admin/two-factor/"):
        assert again.get(path)["Location"].startswith("/admin/two-factor/verify/?next=")
    response = again.post("/admin/two-factor/verify/", {"code": code_for(device, 1),
                                                       "next": "/admin/checkout/checkoutsession/"})
    assert response["Location"] == "/admin/checkout/checkoutsession/"
    assert again.get("/admin/checkout/checkoutsession/").status_code == 200


def test_a_wrong_code_is_refused_and_signs_nobody_in(enrolled, settings):
    device, _ = enrolled
    client = Client()
    password_login(client)
    good = code_for(device, 1)
    wrong = f"{(int(good) + 1) % 1000000:06d}"
    for bad in (wrong, "abc", "", "1234567", "<script>"):
        response = client.post("/admin/two-factor/verify/", {"code": bad})
        assert response.status_code == 200
        assert 'role="alert"' in response.content.decode()
        assert client.get("/admin/").status_code == 302
    # The wrong six digits count: django-otp makes the device wait before the next try.
    response = client.post("/admin/two-factor/verify/", {"code": wrong})
    assert "Too many wrong codes" in response.content.decode() or "not right" in response.content.decode()
    device.refresh_from_db()
    assert device.throttling_failure_count >= 1


def test_codes_come_too_fast_after_wrong_ones_and_the_member_is_told_to_wait(enrolled):
    device, _ = enrolled
    client = Client()
    password_login(client)
    good = code_for(device, 1)
    wrong = f"{(int(good) + 1) % 1000000:06d}"
    client.post("/admin/two-factor/verify/", {"code": wrong})
    client.post("/admin/two-factor/verify/", {"code": wrong})  # now 2 s to wait at least
    response = client.post("/admin/two-factor/verify/", {"code": good})
    assert "Too many wrong codes. Wait" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_a_code_used_once_is_not_accepted_again(enrolled):
    device, _ = enrolled
    first = Client()
    password_login(first)
    code = code_for(device, 1)
    assert first.post("/admin/two-factor/verify/", {"code": code}).status_code == 302
    second = Client()  # someone who saw the code and the password
    password_login(second)
    response = second.post("/admin/two-factor/verify/", {"code": code})
    assert response.status_code == 200 and "already used" in response.content.decode()
    assert second.get("/admin/").status_code == 302


def test_a_recovery_code_signs_in_once(enrolled):
    _, codes = enrolled
    client = Client()
    password_login(client)
    response = client.post("/admin/two-factor/verify/", {"code": codes[0].upper()})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert StaticToken.objects.filter(device__user__username="ana").count() == 9
    other = Client()
    password_login(other)
    assert other.post("/admin/two-factor/verify/", {"code": codes[0]}).status_code == 200
    assert other.get("/admin/").status_code == 302


def test_new_recovery_codes_replace_the_old_and_are_shown_once(enrolled):
    device, old = enrolled
    client = Client()
    password_login(client)
    client.post("/admin/two-factor/verify/", {"code": code_for(device, 1)})
    response = client.post("/admin/two-factor/", {"action": "recovery_codes"})
    new = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert "<code>" not in client.get("/admin/two-factor/").content.decode()  # not shown again
    other = Client()
    password_login(other)
    assert other.post("/admin/two-factor/verify/", {"code": old[1]}).status_code == 200


def test_someone_with_only_the_password_cannot_replace_the_authenticator(enrolled):
    device, _ = enrolled
    attacker = Client()
    password_login(attacker)
    response = attacker.get("/admin/two-factor/setup/")
    assert response["Location"].startswith("/admin/two-factor/verify/")
    attacker.post("/admin/two-factor/setup/", {"code": "000000"})
    assert TOTPDevice.objects.filter(user__username="ana").count() == 1
    assert attacker.post("/admin/two-factor/", {"action": "turn_off"}).status_code == 302
    assert TOTPDevice.objects.filter(user__username="ana", confirmed=True).exists()
    assert attacker.post("/admin/two-factor/", {"action": "recovery_codes"})["Location"].startswith(
        "/admin/two-factor/verify/")


def test_an_owner_requires_two_factor_and_a_member_without_it_must_enrol_first(organizer, organization):
    owner_client = Client()
    password_login(owner_client)
    enrol(owner_client)
    form = owner_client.get(f"/admin/ievents/organization/{organization.pk}/change/").content.decode()
    assert 'name="require_two_factor"' in form
    response = owner_client.post(f"/admin/ievents/organization/{organization.pk}/change/", {
        "name": organization.name, "slug": organization.slug, "notification_email": organization.notification_email,
        "timezone": organization.timezone, "require_two_factor": "on",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    organization.refresh_from_db()
    assert organization.require_two_factor

    viewer = make_organizer(organization, username="rui")
    Membership.objects.filter(user=viewer).update(role="viewer")
    client = Client()
    password_login(client, "rui")
    for path in ("/admin/", "/admin/checkout/checkoutsession/", "/admin/two-factor/verify/"):
        assert client.get(path)["Location"].startswith("/admin/two-factor/setup/")
    page = client.get("/admin/two-factor/setup/").content.decode()
    assert "Your organization requires two-factor sign-in" in page
    # Turning it off is refused while the organization requires it.
    device = TOTPDevice.objects.get(user=viewer, confirmed=False)
    client.post("/admin/two-factor/setup/", {"code": code_for(device), "device": device.pk})
    assert client.get("/admin/").status_code == 200
    client.post("/admin/two-factor/", {"action": "turn_off"})
    assert TOTPDevice.objects.filter(user=viewer, confirmed=True).exists()


def test_without_a_requirement_two_factor_is_optional_and_can_be_turned_off(enrolled):
    device, _ = enrolled
    client = Client()
    password_login(client)
    client.post("/admin/two-factor/verify/", {"code": code_for(device, 1)})
    client.post("/admin/two-factor/", {"action": "turn_off"})
    assert not TOTPDevice.objects.filter(user__username="ana").exists()
    again = Client()
    password_login(again)
    assert again.get("/admin/").status_code == 200


def test_a_manager_cannot_require_two_factor(organizer, organization):
    Membership.objects.filter(user=organizer).update(role="manager")
    client = Client()
    password_login(client)
    assert client.get(f"/admin/ievents/organization/{organization.pk}/change/").status_code in (302, 403, 404)


def test_the_verify_page_only_redirects_to_this_site(enrolled):
    device, _ = enrolled
    client = Client()
    password_login(client)
    response = client.post("/admin/two-factor/verify/", {"code": code_for(device, 1),
                                                        "next": "https://evil.example/"})
    assert response["Location"] == "/admin/"


def test_the_operator_resets_a_members_two_factor(enrolled):
    from django.core.management import call_command

    call_command("reset_two_factor", "ana")
    assert not TOTPDevice.objects.filter(user__username="ana").exists()
    client = Client()
    password_login(client)
    assert client.get("/admin/").status_code == 200


def test_the_demo_organizer_needs_no_second_factor(db):
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": "organizer", "password": "demo-organizer",
                                                          "next": "/admin/"})
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_two_factor_pages_speak_portuguese(enrolled):
    device, _ = enrolled
    client = Client(HTTP_ACCEPT_LANGUAGE="pt-PT")
    password_login(client)
    page = client.get("/admin/two-factor/verify/").content.decode()
    assert "Abra a sua aplicação autenticadora" in page and "Código de autenticação" in page
    good = code_for(device, 1)
    page = client.post("/admin/two-factor/verify/", {"code": f"{(int(good) + 1) % 1000000:06d}"}).content.decode()
    assert "Esse código não está certo" in page


def test_a_second_click_on_turn_on_leads_to_the_two_factor_page_not_to_an_error(organizer):
    client = Client()
    password_login(client)
    device, codes = enrol(client)
    response = client.post("/admin/two-factor/setup/", {"code": code_for(device), "device": device.pk})
    assert response["Location"] == "/admin/two-factor/"
    assert "already on" in client.get("/admin/two-factor/").content.decode()
    assert list(TOTPDevice.objects.filter(user=organizer).values_list("pk", "confirmed")) == [(device.pk, True)]
    assert StaticToken.objects.filter(device__user=organizer).count() == len(codes) == 10


def test_another_members_device_id_is_not_confirmed_by_my_code(organizer, organization):
    rui = make_organizer(organization, username="rui")
    other = Client()
    password_login(other, "rui")
    other.get("/admin/two-factor/setup/")
    ruis = TOTPDevice.objects.get(user=rui)
    client = Client()
    password_login(client)
    client.get("/admin/two-factor/setup/")
    response = client.post("/admin/two-factor/setup/", {"code": code_for(ruis), "device": ruis.pk})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()


@pytest.mark.parametrize("posted", ["²", "99999999999999999999999", "-1", "", "1e3"])
def test_a_forged_device_field_is_a_form_error_not_a_500(organizer, posted):
    client = Client(raise_request_exception=False)
    password_login(client)
    client.get("/admin/two-factor/setup/")
    response = client.post("/admin/two-factor/setup/", {"code": "123456", "device": posted})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
