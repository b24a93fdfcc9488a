"""SQL statements the gate adds to the attendee's "Continue": a ceiling that only goes down.

Speed is measured in bench/bench_gate.py, never asserted here; the number of statements
is deterministic, so it can be. The same submit (a fresh attendee, the same details) is
counted with the gate off and with a gate that allows; the difference is what the gate
costs in round trips to the database. Counted with Django's test client on the test
database, savepoints included, the same way tests/perf counts the checkout.

Before the gate-latency work the gate added 7 statements: the rate limit, the fingerprint's
two reads, the payload's three (line items, answers, tickets) and the call log. Now the
fingerprint and the payload share one read of the line items and one of the answers, and a
session that has never been paid skips the tickets read (it has none). Then (issue 3's speed
work) the rate limit's counts joined that read, and the approval, which took a savepoint, a
lock, two reads, an update and a release, became one conditional UPDATE on the session's
``details_version``.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkout.models import CheckoutSession
from tests.servers import Reply
from webhooks.models import GateCall, GateSettings

from .conftest import start_checkout, submit_details

pytestmark = pytest.mark.django_db

# The call log, and the approval: one UPDATE that only matches while the details are the ones
# read (2; was 7 + 6); on PostgreSQL the two are one statement (1). The read the fingerprint and
# payload are built from (line items, answers and the rate limit's counts) is no longer the
# gate's: the save reads its details back under the lock, and adds the counts to that read
# (it was a statement of its own, 3 and 2). The gate-off path records no approval, since an
# approval there would let the details through a gate turned on later
# (tests/gate/test_gate_turned_on_later.py).
def added_by_the_gate() -> int:
    return 1 if connection.vendor == "postgresql" else 2


def continue_statements(client, event) -> list[str]:
    session = start_checkout(client, event)
    client.get(f"/c/{session.public_id}/")
    with CaptureQueriesContext(connection) as queries:
        response = submit_details(client, session, email="ana@acme.test", Company="Acme")
    assert response.status_code == 302 and response["Location"].endswith("/review/"), response.status_code
    return [q["sql"] for q in queries.captured_queries]


def test_an_allowing_gate_adds_a_fixed_small_number_of_statements_to_continue(client, event, gate, gate_server):
    GateSettings.objects.filter(pk=gate.pk).update(enabled=False)
    off = continue_statements(client, event)
    server = gate_server(Reply(200, {}))
    GateSettings.objects.filter(pk=gate.pk).update(enabled=True)
    on = continue_statements(client, event)

    assert len(server.verified) == 1 and GateCall.objects.count() == 1  # the gate really was asked, and logged
    added = len(on) - len(off)
    listing = "\n".join(on)
    assert added <= added_by_the_gate(), f"the gate now adds {added} statements:\n{listing}"
    assert sum("INSERT INTO webhooks_gatecall" in sql.replace('"', "") for sql in on) == 1


def test_the_approval_recorded_with_fewer_statements_still_matches_what_the_gate_saw(client, event, gate, gate_server):
    gate_server(Reply(200, {}))
    continue_statements(client, event)
    session = CheckoutSession.objects.order_by("-id").first()
    from checkout import services

    assert session.gate_approved_fingerprint == services.details_fingerprint(session)
    assert services.has_gate_approval(session)


def test_details_changed_in_another_tab_while_the_gate_was_asked_void_the_approval(client, event, gate, gate_server,
                                                                                   monkeypatch):
    """The fingerprint is now built from the rows the payload was built from, before the call;
    the approval still re-reads the details under the session's lock and refuses to bind
    details the gate never saw."""
    from checkout import services
    from webhooks import gate as gate_module

    server = gate_server(Reply(200, {}))
    session = start_checkout(client, event)
    real_result = gate_module.GateStarted.result

    def second_tab_meanwhile(started):  # the other tab saves between our commit and the gate's answer
        answer = real_result(started)
        locked = CheckoutSession.objects.get(pk=session.pk)
        services.save_attendee_details(locked, name="Eve", email="eve@evil.test", answers={})
        return answer

    monkeypatch.setattr(gate_module.GateStarted, "result", second_tab_meanwhile)
    response = submit_details(client, session, email="ana@acme.test", Company="Acme")

    assert response.status_code == 200 and gate_module.DETAILS_CHANGED_MESSAGE in response.content.decode()
    assert server.verified[0]["data"]["object"]["customer"]["email"] == "ana@acme.test"
    session.refresh_from_db()
    assert session.customer_email == "eve@evil.test" and not session.gate_approved_fingerprint
    assert not services.has_gate_approval(session)
    assert GateCall.objects.get().decision == "allow"  # the call is logged as the gate answered it


def test_the_single_read_gives_the_same_payload_and_fingerprint_as_the_orm(client, event, gate):
    """``load_details`` replaces two ORM prefetches by one statement; what the gate is sent and
    what the approval is bound to must not change by a byte."""
    from checkout import services
    from checkout.representation import session_as_api
    from webhooks.gate import load_details

    GateSettings.objects.filter(pk=gate.pk).update(enabled=False)
    session = start_checkout(client, event, qty=3)
    submit_details(client, session, email="Ana@Acme.test", size="L")
    plain = CheckoutSession.objects.select_related("event").get(pk=session.pk)
    loaded = CheckoutSession.objects.select_related("event").get(pk=session.pk)
    load_details(loaded)

    expected, fingerprint = session_as_api(plain), services.details_fingerprint(plain)
    assert expected["answers"] and expected["line_items"][0]["quantity"] == 3  # something to compare
    with CaptureQueriesContext(connection) as queries:
        assert session_as_api(loaded) == expected
        assert services.details_fingerprint(loaded) == fingerprint
    assert len(queries) == 0  # both built from the rows already read
    # A field the single read did not fetch is loaded when asked for, not a made-up default.
    assert loaded.line_items.all()[0].ticket_type.price == event.ticket_types.get().price


def test_the_one_statement_log_and_approval_writes_what_the_two_calls_write(event, gate, open_session):
    """``log_call_and_approve`` (one statement on PostgreSQL) against ``log_call`` plus
    ``record_gate_approval``: the same call row, the same approval, the same refusal."""
    from checkout import services
    from webhooks import gate as gate_module

    answer = gate_module.GateAnswer("allowed", 200, 21, message="ok")
    session = services.save_attendee_details(open_session, name="Ana", email="ana@acme.test", answers={})
    call, approved = gate_module.log_call_and_approve(gate, session, answer, "f" * 64, breaker_open=False,
                                                      client_ip="203.0.113.7")
    reference = gate_module.log_call(gate, session, answer, allowed=True, client_ip="203.0.113.7")
    fields = ["event_id", "session_id", "outcome", "decision", "status_code", "latency_ms", "message", "error",
              "is_test", "breaker_open", "client_ip"]
    stored, expected = (GateCall.objects.filter(pk=pk).values(*fields).get() for pk in (call.pk, reference.pk))
    assert approved and stored == expected and call.created_at is not None
    assert GateCall.objects.get(pk=call.pk).created_at == call.created_at
    session.refresh_from_db()
    assert session.gate_approved_fingerprint == "f" * 64 and session.gate_approved_at is not None

    stale = CheckoutSession.objects.get(pk=session.pk)
    services.save_attendee_details(session, name="Ana", email="eve@evil.test", answers={})  # another tab
    call, approved = gate_module.log_call_and_approve(gate, stale, answer, "e" * 64, breaker_open=False,
                                                      client_ip=None)
    assert not approved and GateCall.objects.filter(pk=call.pk).exists()  # logged, not approved
    assert CheckoutSession.objects.get(pk=session.pk).gate_approved_fingerprint != "e" * 64


def test_the_one_statement_log_and_revocation_writes_what_the_two_calls_write(event, gate, open_session):
    """``log_call_and_revoke`` (a denial, or an error under ``block``) against ``log_call``
    plus ``revoke_gate_approval``: the same call row, and no approval left standing."""
    from checkout import services
    from webhooks import gate as gate_module

    session = services.save_attendee_details(open_session, name="Ana", email="ana@acme.test", answers={})
    allowed = gate_module.GateAnswer("allowed", 200, 21)
    _, approved = gate_module.log_call_and_approve(gate, session, allowed, "f" * 64, breaker_open=False, client_ip=None)
    assert approved and CheckoutSession.objects.get(pk=session.pk).gate_approved_fingerprint == "f" * 64

    denied = gate_module.GateAnswer("denied", 403, 9, message="Not on the list")
    call = gate_module.log_call_and_revoke(gate, session, denied, breaker_open=True, client_ip="2001:db8::7")
    reference = gate_module.log_call(gate, session, denied, allowed=False, breaker_open=True, client_ip="2001:db8::7")
    fields = ["event_id", "session_id", "outcome", "decision", "status_code", "latency_ms", "message", "error",
              "is_test", "breaker_open", "client_ip"]
    stored, expected = (GateCall.objects.filter(pk=pk).values(*fields).get() for pk in (call.pk, reference.pk))
    assert stored == expected and stored["decision"] == "deny"
    revoked = CheckoutSession.objects.get(pk=session.pk)
    assert revoked.gate_approved_fingerprint == "" and revoked.gate_approved_at is None
    assert not services.has_gate_approval(revoked)


@pytest.mark.django_db(transaction=True)
def test_only_the_approval_skips_the_disk_wait_and_only_for_its_own_transaction(event, gate, open_session):
    """The approval's commit does not wait for the disk (it fails closed if lost); a denial's
    does, and so does everything after it on the same connection, and everything inside a
    caller's transaction."""
    from django.db import transaction

    from checkout import services
    from webhooks import gate as gate_module

    def setting() -> str:
        if connection.vendor != "postgresql":
            return "on"  # SQLite (make run): no such setting, and nothing is relaxed
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    session = services.save_attendee_details(open_session, name="Ana", email="ana@acme.test", answers={})
    answer = gate_module.GateAnswer("allowed", 200, 21)
    with CaptureQueriesContext(connection) as approval:
        gate_module.log_call_and_approve(gate, session, answer, "f" * 64, breaker_open=False, client_ip=None)
    with CaptureQueriesContext(connection) as denial:
        gate_module.log_call_and_revoke(gate, session, gate_module.GateAnswer("denied", 403, 9), breaker_open=False,
                                        client_ip=None)
    with transaction.atomic(), CaptureQueriesContext(connection) as nested:
        gate_module.log_call_and_approve(gate, session, answer, "e" * 64, breaker_open=False, client_ip=None)
        assert setting() == "on"  # the caller's transaction was left as it was
    assert setting() == "on"  # nothing leaked into the connection

    statement = "set_config('synchronous_commit', 'off', true)"
    if connection.vendor == "postgresql":
        assert [statement in q["sql"] for q in approval.captured_queries] == [True]
    assert not any(statement in q["sql"] for q in denial.captured_queries + nested.captured_queries)
    assert CheckoutSession.objects.get(pk=session.pk).gate_approved_fingerprint == "e" * 64
    assert GateCall.objects.filter(session=session).count() == 3
