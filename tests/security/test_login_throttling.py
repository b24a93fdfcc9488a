"""The back office's login takes a few guesses, not unlimited ones (django-axes): per account
and per client address, with a clear message, and an operator who can unlock.

Every test goes through the real login form (``POST /admin/login/``)."""

import pytest
from django.core.management import call_command
from django.test import Client

from tests.conftest import ORGANIZER_PASSWORD, make_organizer

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # what is tested is the count
    settings.AXES_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXY_COUNT = 0


def log_in(client, username, password, address="203.0.113.7", **headers):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"},
                       REMOTE_ADDR=address, **headers)


def fail(client, times, username="ana", address="203.0.113.7", **headers):
    for _ in range(times):
        response = log_in(client, username, "wrong-password", address, **headers)
        assert response.status_code in (200, 429)
    return response


def test_a_wrong_password_is_refused_and_the_right_one_still_works_below_the_limit(client, organizer):
    response = fail(client, 2)
    assert response.status_code == 200
    assert b"Please enter the correct username and password" in response.content
    response = log_in(client, "ana", ORGANIZER_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_an_account_is_locked_after_the_limit_even_with_the_right_password(client, organizer):
    response = fail(client, 3)
    assert response.status_code == 429
    text = response.content.decode()
    assert 'role="alert"' in text and "Too many failed login attempts" in text and "15 minutes" in text
    # From any other address too: the account itself is locked.
    response = log_in(Client(), "ana", ORGANIZER_PASSWORD, address="198.51.100.20")
    assert response.status_code == 429
    assert "_auth_user_id" not in Client().session


def test_an_address_is_locked_after_the_limit_whatever_account_it_tries(client, organizer, organization):
    make_organizer(organization, username="rui")
    for username in ("ana-1", "ana-2", "ana-3"):  # spraying: one guess each at many accounts
        fail(client, 1, username=username)
    response = log_in(client, "rui", ORGANIZER_PASSWORD)
    assert response.status_code == 429
    # Rui from his own address is not affected.
    assert log_in(Client(), "rui", ORGANIZER_PASSWORD, address="198.51.100.20").status_code == 302


def test_the_lock_out_message_is_in_portuguese_for_a_portuguese_browser(client, organizer):
    response = fail(client, 3, HTTP_ACCEPT_LANGUAGE="pt-PT")
    assert response.status_code == 429
    assert "Demasiadas tentativas" in response.content.decode()


def test_a_forged_x_forwarded_for_earns_no_fresh_guesses_without_a_trusted_proxy(client, organizer, organization):
    make_organizer(organization, username="rui")
    for number in range(3):
        log_in(client, f"nobody-{number}", "x", HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")
    assert log_in(client, "rui", ORGANIZER_PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_a_trusted_proxy_the_address_it_appended_is_counted(client, settings, organizer, organization):
    settings.TRUSTED_PROXY_COUNT = 1
    make_organizer(organization, username="rui")
    proxy = "10.0.0.2"
    for number in range(3):  # one attacker, whatever it writes before the proxy's entry
        log_in(client, f"nobody-{number}", "x", proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{number}, 203.0.113.66")
    assert log_in(client, "rui", ORGANIZER_PASSWORD, proxy,
                  HTTP_X_FORWARDED_FOR="203.0.113.66").status_code == 429
    # Another client behind the same proxy still logs in.
    assert log_in(Client(), "rui", ORGANIZER_PASSWORD, proxy,
                  HTTP_X_FORWARDED_FOR="203.0.113.67").status_code == 302


def test_ipv6_addresses_of_one_64_count_together(client, organizer, organization):
    make_organizer(organization, username="rui")
    for number in range(3):
        log_in(client, f"nobody-{number}", "x", f"2001:db8:1:2::{number + 1:x}")
    assert log_in(client, "rui", ORGANIZER_PASSWORD, "2001:db8:1:2:ffff::1").status_code == 429
    assert log_in(Client(), "rui", ORGANIZER_PASSWORD, "2001:db8:1:3::1").status_code == 302


def test_the_operator_unlocks_an_account_with_axes_reset_username(client, organizer):
    fail(client, 3)
    assert log_in(client, "ana", ORGANIZER_PASSWORD, address="198.51.100.20").status_code == 429
    call_command("axes_reset_username", "ana", stdout=None)
    # The address that guessed is still locked; the account from elsewhere is not.
    assert log_in(Client(), "ana", ORGANIZER_PASSWORD, address="198.51.100.20").status_code == 302


def test_the_operator_unlocks_an_address_with_axes_reset_ip(client, organizer, organization):
    for number in range(3):
        log_in(client, f"nobody-{number}", "x")
    assert log_in(client, "ana", ORGANIZER_PASSWORD).status_code == 429
    call_command("axes_reset_ip", "203.0.113.7")
    assert log_in(Client(), "ana", ORGANIZER_PASSWORD).status_code == 302


def test_the_lock_out_ends_when_the_cool_off_has_passed_since_the_last_try(client, settings, organizer):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    fail(client, 3)
    assert log_in(client, "ana", ORGANIZER_PASSWORD).status_code == 429
    # 14 minutes later it is still locked; past 15, the right password works again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    assert log_in(client, "ana", ORGANIZER_PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=5))
    assert log_in(client, "ana", ORGANIZER_PASSWORD).status_code == 302
