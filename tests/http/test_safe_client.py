"""The safe outbound HTTP client against real sockets: deadline, size cap, redirects, SSRF.

No wall-clock thresholds: where the deadline matters, the result is compared with how long
the hostile server would have held us (its own schedule), by a wide ratio.
"""

import json
import socket
import threading

import pytest
from django.test import override_settings

from tests.servers import LocalServer, Reply, refused_url
from webhooks import http
from webhooks.http import address_is_blocked, post


def echo(req):
    return Reply(200, {"got": req.json(), "host": req.headers.get("host")})


def test_a_2xx_answer_is_read_whole_with_lower_cased_headers():
    with LocalServer(lambda req: Reply(201, {"ok": True}, headers={"X-Trace": "abc"})) as server:
        result = post(server.url, b'{"a": 1}', {"Webhook-Id": "msg_1"}, timeout=2)
    assert result.ok and result.status_code == 201 and result.error == "" and result.error_kind == ""
    assert json.loads(result.body) == {"ok": True}
    assert result.headers["x-trace"] == "abc" and result.headers["content-type"] == "application/json"
    sent = server.requests[0]
    assert sent.method == "POST" and sent.body == b'{"a": 1}'
    assert sent.headers["webhook-id"] == "msg_1" and sent.headers["content-type"] == "application/json"
    assert sent.headers["accept-encoding"] == "identity"


def test_the_host_header_carries_the_name_while_the_checked_address_is_connected_to():
    with LocalServer(echo) as server:
        result = post(server.url.replace("127.0.0.1", "localhost"), b'{"x": 1}', {}, timeout=2, allow_private=True)
    assert result.ok
    assert json.loads(result.body)["host"] == f"localhost:{server.port}"


def test_connections_are_kept_alive_per_host():
    with LocalServer(Reply(200, {"ok": True})) as server:
        results = [post(server.url, b"{}", {}, timeout=2) for _ in range(5)]
    assert all(r.ok for r in results)
    assert len({req.peer_port for req in server.requests}) == 1


def test_a_cookie_a_receiver_sets_is_never_sent_back():
    with LocalServer(Reply(200, b"ok", headers={"Set-Cookie": "session=abc; Path=/"})) as server:
        assert post(server.url, b"{}", {}, timeout=2).ok
        assert post(server.url, b"{}", {}, timeout=2).ok
    assert [r.headers.get("cookie") for r in server.requests] == [None, None]


def test_a_redirect_is_returned_not_followed():
    with LocalServer(Reply(200, {"ok": True})) as elsewhere:
        with LocalServer(Reply(302, b"", headers={"Location": elsewhere.url})) as server:
            result = post(server.url, b"{}", {}, timeout=2)
    assert result.status_code == 302 and not result.ok and result.error == ""
    assert elsewhere.requests == []


@pytest.mark.parametrize("status", [400, 408, 429, 500, 503])
def test_error_statuses_are_complete_answers_but_not_ok(status):
    with LocalServer(Reply(status, {"message": "no"})) as server:
        result = post(server.url, b"{}", {}, timeout=2)
    assert result.status_code == status and result.error_kind == "" and not result.ok
    assert json.loads(result.body) == {"message": "no"}


def test_a_server_that_never_answers_is_cut_off_at_the_deadline():
    with LocalServer(Reply(hang=True)) as server:
        result = post(server.url, b"{}", {}, timeout=0.3)
        assert len(server.requests) == 1
    assert result.error_kind == "timeout" and result.status_code is None and not result.ok
    assert result.elapsed_ms < 120_000 / 20  # the server would have held us for two minutes


def test_a_slow_status_line_within_the_deadline_is_fine_and_one_past_it_is_a_timeout():
    with LocalServer(Reply(200, {"ok": True}, delay=0.05)) as server:
        assert post(server.url, b"{}", {}, timeout=2).ok
    with LocalServer(Reply(200, {"ok": True}, delay=3)) as server:
        result = post(server.url, b"{}", {}, timeout=0.3)
    assert result.error_kind == "timeout" and result.status_code is None


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_at_the_total_deadline():
    trickle_seconds = 0.2 * 100  # the server would need 20 s for the whole body
    with LocalServer(Reply(200, "x" * 100, trickle=0.2)) as server:
        result = post(server.url, b"{}", {}, timeout=0.5)
    assert result.error_kind == "timeout" and not result.ok
    assert result.status_code == 200  # the status line did arrive; the body did not
    assert result.elapsed_ms < trickle_seconds * 1000 / 10


def test_a_shorter_deadline_than_those_already_watched_is_still_kept():
    # The watchdog sleeps until the earliest deadline it knows: a request with a shorter
    # timeout, started while a longer one waits, must wake it.
    long_timeout = 4
    with LocalServer(Reply(hang=True)) as hanging, LocalServer(Reply(200, "x" * 100, trickle=0.2)) as trickling:
        waiting = threading.Thread(target=post, args=(hanging.url, b"{}", {}), kwargs={"timeout": long_timeout})
        waiting.start()
        while not hanging.requests:
            waiting.join(0.01)
        result = post(trickling.url, b"{}", {}, timeout=0.5)
        waiting.join()
    assert result.error_kind == "timeout" and result.status_code == 200
    assert result.elapsed_ms < long_timeout * 1000 / 2


def test_after_a_timeout_the_next_call_to_the_same_host_gets_a_fresh_connection():
    replies = iter([Reply(200, "x" * 50, trickle=0.2), Reply(200, {"ok": True})])
    with LocalServer(lambda req: next(replies)) as server:
        first = post(server.url, b"{}", {}, timeout=0.3)
        second = post(server.url, b"{}", {}, timeout=2)
    assert first.error_kind == "timeout"
    assert second.ok and json.loads(second.body) == {"ok": True}


def test_a_declared_huge_body_is_refused_without_reading_it():
    with LocalServer(Reply(200, b"", huge=50_000_000)) as server:
        result = post(server.url, b"{}", {}, timeout=5, max_bytes=1024)
    assert result.error_kind == "too_large" and result.status_code == 200 and not result.ok
    assert len(result.body) <= 1024 and "1024" in result.error


def test_an_undeclared_huge_body_is_capped_while_streaming():
    with LocalServer(Reply(200, b"", huge=5_000_000, no_length=True)) as server:
        result = post(server.url, b"{}", {}, timeout=5, max_bytes=10_000)
    assert result.error_kind == "too_large" and len(result.body) == 10_000


def test_an_undeclared_small_body_is_read_to_the_end():
    with LocalServer(Reply(200, {"fine": True}, no_length=True)) as server:
        result = post(server.url, b"{}", {}, timeout=2)
    assert result.ok and json.loads(result.body) == {"fine": True}


def test_the_default_cap_comes_from_settings():
    with override_settings(WEBHOOK_MAX_RESPONSE_BYTES=100):
        with LocalServer(Reply(200, "y" * 101)) as server:
            assert post(server.url, b"{}", {}, timeout=2).error_kind == "too_large"
        with LocalServer(Reply(200, "y" * 100)) as server:
            assert post(server.url, b"{}", {}, timeout=2).ok


def test_a_refused_connection_is_a_connection_error():
    result = post(refused_url(), b"{}", {}, timeout=2)
    assert result.error_kind == "connection" and result.status_code is None
    assert "refused" in result.error.lower()


def test_tls_to_a_plain_http_server_is_a_tls_error():
    with LocalServer(Reply(200, {"ok": True})) as server:
        result = post(server.url.replace("http://", "https://"), b"{}", {}, timeout=2, allow_private=True)
    assert result.error_kind == "tls" and result.status_code is None


@override_settings(DEBUG=True)
@pytest.mark.parametrize("host", ["localhost", "[::ffff:127.0.0.1]", "127.0.0.1"])
def test_private_addresses_are_refused_when_private_targets_are_off(host):
    with LocalServer(Reply(200, {"ok": True})) as server:
        url = f"http://{host}:{server.port}/hook"
        with override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False):
            result = post(url, b"{}", {}, timeout=2)
    assert result.error_kind == "blocked" and result.status_code is None
    assert server.requests == []  # nothing was sent


def test_https_to_a_name_resolving_to_loopback_is_refused_before_connecting():
    with LocalServer(Reply(200, {"ok": True})) as server:
        with override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=False):
            result = post(f"https://localhost:{server.port}/hook", b"{}", {}, timeout=2)
    assert result.error_kind == "blocked" and "private" in result.error
    assert server.requests == []


@override_settings(DEBUG=False, WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
def test_plain_http_is_refused_in_production():
    result = post("http://example.com/hook", b"{}", {}, timeout=2)
    assert result.error_kind == "blocked" and "https" in result.error


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://user:pw@example.com/", "not a url", "http:///path",
                                 "http://example.com:99999/"])
def test_malformed_urls_are_invalid_urls(url):
    result = post(url, b"{}", {}, timeout=2)
    assert result.error_kind == "invalid_url" and result.status_code is None


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
                                "100.64.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
                                "64:ff9b::a00:1", "2002:a00:1::", "224.0.0.1"])
def test_non_public_addresses_are_blocked(ip):
    assert address_is_blocked(ip)


@pytest.mark.parametrize("ip", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_not_blocked(ip):
    assert not address_is_blocked(ip)


def test_slow_name_resolution_counts_against_the_deadline(monkeypatch):
    # The system resolver cannot be made slow on demand; a getaddrinfo that stalls stands in.
    real = socket.getaddrinfo
    stall = threading.Event()

    def slow_getaddrinfo(host, *args, **kwargs):
        if host == "slow.example":
            stall.wait(10)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(http.socket, "getaddrinfo", slow_getaddrinfo)
    try:
        result = post("http://slow.example/hook", b"{}", {}, timeout=0.3, allow_private=True)
    finally:
        stall.set()
    assert result.error_kind == "timeout" and "Resolving" in result.error


def test_a_name_that_does_not_resolve_is_a_connection_error():
    result = post("http://no-such-host.invalid/hook", b"{}", {}, timeout=3, allow_private=True)
    assert result.error_kind in ("connection", "timeout")
    assert result.status_code is None


def test_concurrent_calls_from_many_threads_each_get_their_own_answer():
    with LocalServer(echo) as server:
        results: dict[int, object] = {}

        def call(n):
            results[n] = post(server.url, json.dumps({"n": n}).encode(), {}, timeout=5)

        threads = [threading.Thread(target=call, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(results[n].ok and json.loads(results[n].body)["got"] == {"n": n} for n in range(24))


# --- TLS to the pinned address ---------------------------------------------------------------------
@pytest.fixture
def tls_files(tmp_path):
    from tests.servers import self_signed_certificate

    return self_signed_certificate(tmp_path, "localhost")


def test_https_connects_to_the_checked_address_and_verifies_the_certificate_for_the_name(tls_files):
    cert, key = tls_files
    with LocalServer(echo, tls=(cert, key)) as server:
        with override_settings(WEBHOOK_CA_BUNDLE=cert):
            result = post(f"https://localhost:{server.port}/hook", b'{"x": 1}', {}, timeout=3, allow_private=True)
    assert result.ok, result.error
    assert json.loads(result.body) == {"got": {"x": 1}, "host": f"localhost:{server.port}"}


def test_a_certificate_for_another_name_is_refused(tls_files):
    cert, key = tls_files
    with LocalServer(echo, tls=(cert, key)) as server:
        with override_settings(WEBHOOK_CA_BUNDLE=cert):
            # Same server and address, but asked for by its IP: the certificate names only "localhost".
            result = post(f"https://127.0.0.1:{server.port}/hook", b"{}", {}, timeout=3, allow_private=True)
    assert result.error_kind == "tls" and not result.ok


def test_an_untrusted_certificate_is_refused(tls_files):
    cert, key = tls_files
    with LocalServer(echo, tls=(cert, key)) as server:
        result = post(f"https://localhost:{server.port}/hook", b"{}", {}, timeout=3, allow_private=True)
    assert result.error_kind == "tls" and "CERTIFICATE_VERIFY_FAILED" in result.error.upper().replace(" ", "_")
    assert server.requests == []
