"""SQL statements the gate adds to the attendee's "Continue": a ceiling that only goes down.

Speed is measured in bench/bench_gate.py, never asserted here; the number of statements
is deterministic, so it can be. The same submit (a fresh attendee, the same details) is
counted with the gate off and with a gate that allows; the difference is what the gate
costs in round trips to the database. Counted with Django's test client on the test
database, savepoints included, the same way tests/perf counts the checkout.

The fingerprint and the payload are built from the line items and answers the save read
back under the session's lock, and a session that was never paid has no tickets to read.
What the gate adds: the rate limit's two counts, the call log, and the approval, one
conditional UPDATE on the session's ``details_version``.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkout.models import CheckoutSession
from tests.servers import Reply
from webhooks.models import GateCall, GateSettings

from .conftest import start_checkout, submit_details

pytestmark = pytest.mark.django_db

# The rate limit's counts (per session, per client address), the call log and the approval;
# and the line items and answers read back under the lock, which the gate's payload lists
# (without a gate nothing needs them, so they are not read: issue 26).
# The gate-off path records no approval, since an approval there would let the details through
# a gate turned on later (tests/gate/test_gate_turned_on_later.py).
ADDED_BY_THE_GATE = 6


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
    assert added <= ADDED_BY_THE_GATE, f"the gate now adds {added} statements:\n{listing}"
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
    """The fingerprint is built from the rows the payload was built from, before the call; the
    approval is recorded only while the details are the ones saved then, so it never binds
    details the gate never saw."""
    from checkout import services
    from webhooks import gate as gate_module

    server = gate_server(Reply(200, {}))
    session = start_checkout(client, event)
    real_ask = gate_module.ask_gate

    def second_tab_meanwhile(gate_settings, payload):  # the other tab saves while the gate thinks
        answer = real_ask(gate_settings, payload)
        locked = CheckoutSession.objects.get(pk=session.pk)
        services.save_attendee_details(locked, name="Eve", email="eve@evil.test", answers={})
        return answer

    monkeypatch.setattr(gate_module, "ask_gate", second_tab_meanwhile)
    response = submit_details(client, session, email="ana@acme.test", Company="Acme")

    assert response.status_code == 200 and str(gate_module.DETAILS_CHANGED_MESSAGE) in response.content.decode()
    assert server.verified[0]["data"]["object"]["customer"]["email"] == "ana@acme.test"
    session.refresh_from_db()
    assert session.customer_email == "eve@evil.test" and not session.gate_approved_fingerprint
    assert not services.has_gate_approval(session)
    assert GateCall.objects.get().decision == "allow"  # the call is logged as the gate answered it
