"""The checkout's "Continue" starts the gate's call inside the save of the details, so the
save's commit overlaps the call instead of preceding it; the answer is awaited, and the
outcome written, after the commit. Real commits here (``transaction=True``): outside a test
transaction, ``in_atomic_block`` tells whether the details' transaction was still open.
"""

import threading

import pytest
from django.db import connection

from checkout.models import CheckoutSession
from tests.servers import LocalServer, Reply
from webhooks import gate as gate_module
from webhooks.models import GateCall

from .conftest import start_checkout, submit_details

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def observed(monkeypatch):
    """Where each step of the decision ran: thread, and whether a transaction was open."""
    seen = {}
    start_gate, send, result = gate_module.start_gate, gate_module._send, gate_module.GateStarted.result

    def observing_start(*args, **kwargs):
        seen["start"] = (threading.current_thread().name, connection.in_atomic_block, kwargs.get("in_background"))
        return start_gate(*args, **kwargs)

    def observing_send(*args, **kwargs):
        seen["send"] = threading.current_thread().name
        return send(*args, **kwargs)

    def observing_result(self):
        seen["result"] = (threading.current_thread().name, connection.in_atomic_block)
        return result(self)

    monkeypatch.setattr(gate_module, "start_gate", observing_start)
    monkeypatch.setattr(gate_module, "_send", observing_send)
    monkeypatch.setattr(gate_module.GateStarted, "result", observing_result)
    return seen


def test_the_call_starts_before_the_details_commit_and_is_read_after(client, event, gate, gate_server, observed):
    server = gate_server(Reply(200, {}))
    session = start_checkout(client, event)
    response = submit_details(client, session, email="ana@acme.test")
    assert response.status_code == 302 and response["Location"].endswith("/review/")

    main = threading.current_thread().name
    assert observed["start"] == (main, True, True)  # inside the details' transaction, sent in the background
    assert observed["send"].startswith("gate-call")  # the request went out from a worker thread
    assert observed["result"] == (main, False)  # the answer awaited once the details were committed
    assert server.verified[0]["data"]["object"]["customer"]["email"] == "ana@acme.test"
    saved = CheckoutSession.objects.get(pk=session.pk)
    assert saved.gate_approved_fingerprint and saved.gate_approved_at is not None
    assert GateCall.objects.get().decision == "allow"


def test_a_denial_from_a_background_call_is_recorded_and_shown(client, event, gate, gate_server, observed):
    gate_server(Reply(403, {"message": "Members only"}))
    session = start_checkout(client, event)
    response = submit_details(client, session, email="eve@example.com")
    assert response.status_code == 200 and "Members only" in response.content.decode()
    assert observed["send"].startswith("gate-call")
    denied = CheckoutSession.objects.get(pk=session.pk)
    assert denied.customer_email == "eve@example.com"  # the details stay saved, unapproved
    assert not denied.gate_approved_fingerprint
    assert GateCall.objects.get().decision == "deny"


def test_a_refused_save_starts_no_call(client, event, gate, gate_server, observed):
    server = gate_server(Reply(200, {}))
    session = start_checkout(client, event)
    CheckoutSession.objects.filter(pk=session.pk).update(status="expired")
    submit_details(client, session)
    assert "start" not in observed and server.requests == [] and not GateCall.objects.exists()


def test_background_calls_never_queue_behind_each_other(gate):
    """Each call gets a thread of its own at once: twelve calls to a hanging gate, started
    together, are all decided by one timeout, as a single call is (a pool of threads would
    make the later ones wait for the earlier ones' deadlines, and double the wait)."""
    import time

    with LocalServer(Reply(hang=True)) as hanging:
        body, headers = gate_module._signed(gate, {"id": "msg_test", "type": "checkout.validate"})

        def decided_after(count: int) -> float:
            t0 = time.monotonic()
            calls = [gate_module._in_background(gate_module._send, hanging.url, 500, body, headers) for _ in range(count)]
            answers = [call.result() for call in calls]
            assert {answer.outcome for answer in answers} == {"error"}
            return time.monotonic() - t0

        one, twelve = decided_after(1), decided_after(12)
    assert twelve < 1.5 * one, (one, twelve)
