"""Provider APIs that misbehave, on real sockets (tests/servers.py stands in for Easypay,
Ifthenpay and Stripe): slow, silent, trickling, huge, broken. The attendee gets a clear
message, a webhook gets a 503 so the provider retries, and nothing changes."""

import json
import time

import pytest

from checkout.models import Status
from payments.base import ProviderError, ProviderUnavailable
from payments.registry import get_provider
from tests.servers import LocalServer, Reply, refused_url

from .helpers import EASYPAY_SECRET, configure, easypay_notification, easypay_single, pending_session, post_easypay

pytestmark = pytest.mark.django_db
EP_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture
def fast_timeout(settings):
    settings.PAYMENT_PROVIDER_TIMEOUT = 0.5
    return settings


def _easypay(organization, server_url):
    configure(organization, "easypay", secret=EASYPAY_SECRET,
              credentials={"account_id": "acc", "api_key": "key", "api_base": server_url.rsplit("/", 1)[0]})
    return get_provider("easypay", organization)


def test_a_real_easypay_answer_is_read_and_the_credentials_sent(organization, fast_timeout):
    with LocalServer(Reply(200, easypay_single(EP_ID, value=25.0))) as server:
        update = _easypay(organization, server.url).fetch_update(EP_ID, detail="t")
    assert update.amount == 2500
    sent = server.requests[0]
    assert sent.method == "GET" and sent.path == f"/single/{EP_ID}"
    assert (sent.headers["accountid"], sent.headers["apikey"]) == ("acc", "key")


# Each server would take at least this long to answer in full (hang: until stopped).
SLOW_SERVERS = [(Reply(hang=True), 120), (Reply(delay=6), 6),
                (Reply(200, b'{"payment_status": "paid"}' * 2, trickle=0.2), 10)]


@pytest.mark.parametrize(("reply", "full_answer_s"), SLOW_SERVERS)
def test_a_silent_slow_or_trickling_api_is_cut_off(organization, fast_timeout, reply, full_answer_s):
    with LocalServer(reply) as server:
        provider = _easypay(organization, server.url)
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable):
            provider.fetch_update(EP_ID, detail="t")
        elapsed = time.monotonic() - started
    # Compared with the server's own pace, not a wall-clock budget: we gave up long before
    # it would have finished (the 0.5 s deadline, plus at most one read timeout).
    assert elapsed < full_answer_s / 3


def test_a_huge_answer_is_refused_without_reading_it_all(organization, fast_timeout):
    fast_timeout.PAYMENT_PROVIDER_TIMEOUT = 5
    with LocalServer(Reply(200, b"{", huge=50 * 1024 * 1024)) as server, pytest.raises(ProviderError) as caught:
        _easypay(organization, server.url).fetch_update(EP_ID, detail="t")
    assert "more than" in str(caught.value) and not isinstance(caught.value, ProviderUnavailable)


@pytest.mark.parametrize(("reply", "transient"), [
    (Reply(500, {"error": "x"}), True), (Reply(503, b"down"), True), (Reply(429, {"e": 1}), True),
    (Reply(404, {"status": "error"}), False), (Reply(200, b"<html>not json</html>"), False),
    (Reply(302, b"", headers={"Location": "http://127.0.0.1:1/elsewhere"}), False),
])
def test_api_errors_are_transient_or_not(organization, fast_timeout, reply, transient):
    with LocalServer(reply) as server, pytest.raises(ProviderError) as caught:
        _easypay(organization, server.url).fetch_update(EP_ID, detail="t")
    assert isinstance(caught.value, ProviderUnavailable) is transient
    assert len(server.requests) == 1  # no redirect followed, no silent retry


def test_a_refused_connection_is_unavailable(organization, fast_timeout):
    with pytest.raises(ProviderUnavailable):
        _easypay(organization, refused_url()).fetch_update(EP_ID, detail="t")


def test_a_notification_while_easypay_is_silent_is_503_and_changes_nothing(client, organization, event, fast_timeout):
    session, _ = pending_session(event, provider="easypay", reference=EP_ID)
    with LocalServer(Reply(hang=True)) as server:
        _easypay(organization, server.url)
        started = time.monotonic()
        response = post_easypay(client, organization.public_id, easypay_notification(EP_ID))
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 120 / 3  # long before the silent server would have let go (see SLOW_SERVERS)
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING


def test_starting_a_payment_against_a_slow_api_shows_the_attendee_an_alert(client, organization, event, fast_timeout):
    from checkout import services

    session = services.create_session(event, [services.Item(event.ticket_types.get(), 1)])
    session = services.save_attendee_details(session, name="Ana", email="ana@example.com", answers={})
    with LocalServer(Reply(delay=3)) as server:
        _easypay(organization, server.url)
        response = client.post(f"/c/{session.public_id}/review/", {"provider": "easypay"})
    page = response.content.decode()
    assert response.status_code == 200 and 'role="alert"' in page and "could not be started" in page
    assert json.loads(server.requests[0].body)["method"] == "mb"


def test_stripe_calls_go_to_the_configured_api_base(organization, settings, fast_timeout):
    """The stand-in used by offline demos and browser tests: STRIPE_API_BASE."""
    configure(organization, "stripe", credentials={"secret_key": "sk_test_local"})
    session, payment = pending_session(organization.events.get() if organization.events.exists() else
                                       __import__("tests.conftest", fromlist=["make_event"]).make_event(organization),
                                       provider="stripe", reference="cs_test_local")
    answer = {"id": "cs_test_local", "object": "checkout.session", "status": "complete", "payment_status": "paid",
              "client_reference_id": session.public_id, "amount_total": session.amount_total, "currency": "eur"}
    with LocalServer(Reply(200, answer)) as server:
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{server.port}"
        update = get_provider("stripe", organization).confirm(payment)
    assert update.kind == "succeeded" and update.amount == session.amount_total
    assert server.requests[0].path == "/v1/checkout/sessions/cs_test_local"
    assert server.requests[0].headers["authorization"] == "Bearer sk_test_local"
