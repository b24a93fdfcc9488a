"""SQL statements the gate adds to the attendee's "Continue": ceilings that only go down.

Speed is measured in bench/bench_gate.py, never asserted here; the number of statements
is deterministic, so it can be. The same submit (a fresh attendee, the same details) is
counted with the gate off, with a gate that allows, and with the gate's breaker open; the
differences are what the gate costs in round trips to the database. Counted with Django's
test client on the test database, savepoints included, the same way tests/perf counts the
checkout (whose "POST details" ceiling is Continue without a gate).

The gate's payload and fingerprint are built from the line items and answers as this
request has just saved them (``checkout.services.rows_as_saved``), not read back; a
session that was never paid has no tickets to read.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checkout import services
from checkout.models import CheckoutSession
from checkout.representation import session_as_api
from ievents.models import Question
from tests.perf.test_checkout_queries import ceiling
from tests.servers import Reply
from webhooks.models import GateCall, GateSettings

from .conftest import start_checkout

pytestmark = pytest.mark.django_db

# An attendee's first Continue: the rate limit's count per client address, the call log and
# the approval (one conditional UPDATE on the session's ``details_version``). 6 → 3 (issue
# 26): the line items and answers are no longer read back for the payload, and details saved
# once need no count per session (``webhooks.gate.recent_calls``). The gate-off path records
# no approval, since an approval there would let the details through a gate turned on later
# (tests/gate/test_gate_turned_on_later.py).
ADDED_BY_THE_GATE = 3
# A later Continue of the same attendee, with other details: the session's count as well.
ADDED_BY_THE_GATE_AGAIN = 4
# The call log and the policy's decision on the session (the approval, or its revocation):
# nothing is read. 6 → 2 (issue 26): no rows read back, and no rate limit counted while the
# gate is not asked (nobody can probe it).
ADDED_WITH_THE_BREAKER_OPEN = 2


def continue_statements(client, event, *, saved_before: bool = False) -> list[str]:
    """One fresh attendee's Continue (the POST alone); its statements. ``saved_before``: the
    attendee's details were saved once already (with the gate off: no approval to void), and
    this Continue has another email."""
    session = start_checkout(client, event)
    client.get(f"/c/{session.public_id}/")
    questions = {q.text: q.pk for q in Question.objects.filter(event=event)}
    data = {"name": "Ana Silva", "email": "ana@acme.test", f"q_{questions['Company']}": "Acme",
            f"q_{questions['T-shirt size']}": "M"}
    if saved_before:
        services.save_attendee_details(session, name="Ana Silva", email=data["email"],
                                       answers={questions["Company"]: "Acme", questions["T-shirt size"]: "M"})
        data["email"] = "ana.silva@acme.test"
    with CaptureQueriesContext(connection) as queries:
        response = client.post(f"/c/{session.public_id}/", data)
    assert response.status_code == 302, response.status_code
    return [q["sql"].replace('"', "") for q in queries.captured_queries]


def listing(statements: list[str]) -> str:
    return "\n".join(sql[:160] for sql in statements)


def test_continue_without_a_gate_stays_within_the_checkouts_ceiling(client, event, gate):
    GateSettings.objects.filter(pk=gate.pk).update(enabled=False)
    off = continue_statements(client, event)
    assert len(off) <= ceiling("POST details"), listing(off)
    assert not any("webhooks_gatecall" in sql for sql in off)


def test_an_allowing_gate_adds_a_fixed_small_number_of_statements_to_continue(client, event, gate, gate_server):
    GateSettings.objects.filter(pk=gate.pk).update(enabled=False)
    off = continue_statements(client, event)
    server = gate_server(Reply(200, {}))
    GateSettings.objects.filter(pk=gate.pk).update(enabled=True)
    on = continue_statements(client, event)

    assert len(server.verified) == 1 and GateCall.objects.count() == 1  # the gate really was asked, and logged
    added = len(on) - len(off)
    assert added <= ADDED_BY_THE_GATE, f"the gate now adds {added} statements:\n{listing(on)}"
    assert sum(sql.startswith("INSERT INTO webhooks_gatecall") for sql in on) == 1
    # The rows the payload lists are read as often as without a gate: before the save, for the form.
    for table in ("checkout_lineitem", "checkout_answer"):
        reads = [sql for sql in on if sql.startswith("SELECT") and f"FROM {table}" in sql]
        assert len(reads) == sum(sql.startswith("SELECT") and f"FROM {table}" in sql for sql in off), listing(on)


def test_a_later_continue_of_the_same_attendee_also_counts_its_sessions_calls(client, event, gate, gate_server):
    """Saved before without an approval to void (the save re-reads the rows to compare them with
    an approval it holds: its own check, made with or without a gate)."""
    GateSettings.objects.filter(pk=gate.pk).update(enabled=False)
    off = continue_statements(client, event, saved_before=True)
    server = gate_server(Reply(200, {}))
    GateSettings.objects.filter(pk=gate.pk).update(enabled=True)
    on = continue_statements(client, event, saved_before=True)

    assert len(server.verified) == 1
    added = len(on) - len(off)
    assert added <= ADDED_BY_THE_GATE_AGAIN, f"the gate now adds {added} statements:\n{listing(on)}"
    counts = [sql for sql in on if sql.startswith("SELECT COUNT(*)") and "webhooks_gatecall" in sql]
    assert len(counts) == 2 and any("session_id" in sql for sql in counts), listing(on)


def test_with_the_breaker_open_continue_costs_the_call_log_and_the_decision_only(client, event, gate, gate_server):
    """Policy allow, so this answer is a redirect like the gate-off one and only the decision
    differs (blocked, the page renders the form again and keeps a draft: not comparable)."""
    GateSettings.objects.filter(pk=gate.pk).update(enabled=False)
    off = continue_statements(client, event)
    server = gate_server(Reply(200, {}))
    GateSettings.objects.filter(pk=gate.pk).update(enabled=True, on_error="allow",
                                                   breaker_open_until=timezone.now() + timedelta(minutes=5))
    opened = continue_statements(client, event)

    assert not server.requests  # the gate was not asked
    call = GateCall.objects.get()
    assert call.breaker_open and call.decision == "allow"
    assert services.has_gate_approval(CheckoutSession.objects.order_by("-id").first())
    added = len(opened) - len(off)
    assert added <= ADDED_WITH_THE_BREAKER_OPEN, f"an open breaker now adds {added} statements:\n{listing(opened)}"
    assert not any(sql.startswith("SELECT") and "webhooks_gatecall" in sql for sql in opened), listing(opened)


# --- What the gate is shown is what is saved ------------------------------------------------------
def _named_tickets_with_invoice(event):
    event.ticket_types.update(holder_names="ticket", holder_email=True)
    event.invoice_details = "optional"
    event.save(update_fields=["invoice_details"])
    Question.objects.create(event=event, text="Rules accepted", kind="checkbox", position=2)


def _form(event, session, **overrides) -> dict:
    item = session.line_items.get()
    fields = {q.text: f"q_{q.pk}" for q in event.questions.all()}
    data = {"name": "Ana Silva", "email": "Ana@Acme.test", fields["Company"]: "Acme", fields["T-shirt size"]: "M",
            fields["Rules accepted"]: "on", f"holder_{item.pk}_0_name": "Ana Silva",
            f"holder_{item.pk}_1_name": "Rui Costa", f"holder_{item.pk}_1_email": "rui@acme.test",
            "invoice_tax_id": "501964843", "invoice_name": "Acme, Lda", "invoice_address": "Rua Augusta 1, Lisboa"}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_the_payload_and_the_approval_are_those_of_the_rows_as_read_back(client, event, gate, gate_server):
    """Built from what the request holds, the payload and the fingerprint equal what reading
    the saved rows gives: named tickets, invoice details, a tick box; then a second save that
    changes one answer, drops another and renames a holder (answers updated and deleted)."""
    _named_tickets_with_invoice(event)
    server = gate_server(Reply(200, {}))
    session = start_checkout(client, event)
    company = event.questions.get(text="Company")
    saves = [_form(event, session),
             _form(event, session, **{f"q_{company.pk}": None, f"holder_{session.line_items.get().pk}_0_name": "Eva",
                                      f"q_{event.questions.get(text='T-shirt size').pk}": "L"})]
    for number, data in enumerate(saves, start=1):
        response = client.post(f"/c/{session.public_id}/", data)
        assert response.status_code == 302 and response["Location"].endswith("/review/")
        saved = CheckoutSession.objects.get(pk=session.pk)  # read back now, as payment will
        assert server.verified[-1]["data"]["object"] == session_as_api(saved), number
        assert saved.gate_approved_fingerprint == services.details_fingerprint(saved), number
        assert services.has_gate_approval(saved)
    shown = server.verified[-1]["data"]["object"]
    assert "Company" not in shown["answers"] and shown["answers"]["T-shirt size"] == "L"
    assert [h["name"] for h in shown["line_items"][0]["holders"]] == ["Eva", "Rui Costa"]
    assert shown["invoice"]["tax_id"] == "501964843"


def test_the_approval_recorded_with_fewer_statements_still_matches_what_the_gate_saw(client, event, gate, gate_server):
    gate_server(Reply(200, {}))
    continue_statements(client, event)
    session = CheckoutSession.objects.order_by("-id").first()

    assert session.gate_approved_fingerprint == services.details_fingerprint(session)
    assert services.has_gate_approval(session)


def test_details_changed_in_another_tab_while_the_gate_was_asked_void_the_approval(client, event, gate, gate_server,
                                                                                   monkeypatch):
    """The fingerprint is built from the rows the payload was built from; the approval is
    recorded only while the details are the ones saved then, so it never binds details the
    gate never saw."""
    from webhooks import gate as gate_module

    from .conftest import submit_details

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
