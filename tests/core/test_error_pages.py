"""Error pages an attendee may meet are ours, readable, and say what happened to their money."""

import pytest
from django.test import Client, override_settings
from django.urls import path


def boom(request):
    raise RuntimeError("database went away")


urlpatterns = [path("boom/", boom)]


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_server_error_page_tells_the_attendee_no_payment_started():
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    assert 'role="alert"' in page and "No payment was started" in page


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_an_unknown_checkout_is_a_friendly_404(client):
    response = client.get("/c/cs_doesnotexist/")
    assert response.status_code == 404
    assert "can't find that page" in response.content.decode()
