"""SQL statements per checkout page: a ceiling that only goes down.

Speed is measured in bench/, never asserted here; the number of statements a page runs
is deterministic, so it can be. A change that needs more statements must raise the ceiling on
purpose, in the same commit, and say why.

Counted with Django's test client on the test database, savepoints included (each nested
``transaction.atomic()`` is a SAVEPOINT and a RELEASE): the same way bench_checkout counts.
"""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkout.models import CheckoutSession, Status, Transition
from ievents.models import Question
from webhooks.models import Delivery, OutboxEvent, WebhookEndpoint

pytestmark = pytest.mark.django_db

# step -> (ceiling, count before the checkout was first made lean). The same on every
# database: there is one code path.
CEILINGS = {
    "GET event page": (2, 2),
    # 15 → 10 (issue 26): the created event announced from the rows just inserted (no read
    # back of line items and answers); the hold a conditional UPDATE on the price shown too
    # (no read of the types it held); no savepoints (the limits are checked in the
    # session's own transaction, the hold is part of it).
    # The 10: the event; its ticket types; the session, its line items and its created event
    # inserted; the subscribed endpoints; the event's delivery; the hold; the address's
    # limits; and the transaction around them (a savepoint here, BEGIN/COMMIT in production).
    "POST tickets": (10, 16),
    # the session (with its event's gate and organization), its line items, the questions; a
    # session whose details were never saved has no answers to read (4 → 3).
    "GET attendee form": (3, 4),
    # the session, its line items, the questions; under the lock: the session, its update,
    # the answers inserted. 11 → 8 (issue 26): a first save reads no answers; the rows are
    # not read back for a gate either (tests/gate/test_gate_queries.py counts what it adds).
    "POST details": (8, 28),
    "GET review": (4, 5),
    # 13 → 12 (issue 26): the provider saved with the start_payment transition (one UPDATE).
    "POST Pay": (12, 17),
    "GET sandbox page": (1, 1),
    "POST Simulate success": (2, 2),
    # pay and complete under one lock: one save of the session, transitions and events in bulk.
    # 17 → 13 (issue 26): the payment read with its session (one read, not two); the tickets
    # bulk_create returns are listed by the completed event and the email (no read back); the
    # email takes the payment that paid and the lock's organization (no read of its own).
    # 13 → 12 (issue 26): the payment the return page asked about is not read again under the
    # lock. The 12: payment+session; the provider's settings; the session locked (gate,
    # organization); the payment's update; line items; answers; tickets inserted; the
    # session saved (with the ticket email's lease: the email then claims nothing); transitions;
    # outbox events; the subscribed endpoints; deliveries. In production also BEGIN, COMMIT
    # and, once the email is sent, its confirmation_sent_at.
    "GET return page": (12, 42),
    # a completed order's page reads no payment: only an awaited one is shown (4 → 3).
    "GET status page": (3, 4),
}


def ceiling(name: str) -> int:
    return CEILINGS[name][0]


class Flow:
    """One attendee's purchase through the pages, counting each request's statements."""

    def __init__(self, client, event, ticket_type, capture):
        self.client = client
        self.event = event
        self.ticket_type = ticket_type
        self.capture = capture
        self.counts: dict[str, int] = {}
        self.statements: dict[str, list[str]] = {}

    def step(self, name, call, expect=(200, 302)):
        with CaptureQueriesContext(connection) as queries:
            response = call()
        assert response.status_code in expect, (name, response.status_code)
        self.counts[name] = len(queries.captured_queries)
        self.statements[name] = [q["sql"] for q in queries.captured_queries]
        return response

    def answers(self):
        data = {"name": "Ana Silva", "email": "ana@example.com"}
        for question in Question.objects.filter(event=self.event):
            data[f"q_{question.pk}"] = "M" if question.kind == "choice" else f"answer {question.pk}"
        return data

    def buy(self):
        url = self.event.get_absolute_url()
        self.step("GET event page", lambda: self.client.get(url))
        form = self.step("POST tickets", lambda: self.client.post(url, {f"qty_{self.ticket_type.public_id}": "2"}))
        form = form["Location"]
        self.step("GET attendee form", lambda: self.client.get(form))
        details = self.answers()
        review = self.step("POST details", lambda: self.client.post(form, details))["Location"]
        assert review.endswith("/review/"), review
        self.step("GET review", lambda: self.client.get(review))
        sandbox = self.step("POST Pay", lambda: self.client.post(review, {"provider": "sandbox"}))["Location"]
        self.step("GET sandbox page", lambda: self.client.get(sandbox))
        back = self.step("POST Simulate success", lambda: self.client.post(sandbox, {"outcome": "success"}))["Location"]
        with self.capture(execute=True):
            status = self.step("GET return page", lambda: self.client.get(back))["Location"]
        page = self.step("GET status page", lambda: self.client.get(status))
        return CheckoutSession.objects.get(), page.content.decode()


@pytest.fixture
def endpoint(organization):
    """A subscribed endpoint, so every announced transition also writes a delivery row."""
    return WebhookEndpoint.objects.create(organization=organization, url="https://hooks.example.com/in",
                                          enabled_events=["*"])


@pytest.fixture
def flow(client, event, ticket_type, endpoint, django_capture_on_commit_callbacks):
    return Flow(client, event, ticket_type, django_capture_on_commit_callbacks)


def test_each_checkout_page_runs_no_more_statements_than_its_ceiling(flow):
    session, _ = flow.buy()
    over = {name: (count, ceiling(name)) for name, count in flow.counts.items() if count > ceiling(name)}
    assert not over, "\n".join(
        [f"{name}: {count} statements, ceiling {ceiling}" for name, (count, ceiling) in over.items()]
        + [f"--- {name}:\n  " + "\n  ".join(flow.statements[name]) for name in over]
    )
    assert set(flow.counts) == set(CEILINGS)
    assert session.status == Status.COMPLETED


def test_the_whole_checkout_runs_fewer_statements_than_before(flow):
    flow.buy()
    before = sum(b for _, b in CEILINGS.values())
    assert sum(flow.counts.values()) <= sum(ceiling(name) for name in CEILINGS) <= before


def test_the_counted_checkout_still_does_everything_it_did(flow, organization):
    """Fewer statements, same outcome: tickets, history, events, deliveries, the email."""
    session, status_page = flow.buy()
    assert session.status == Status.COMPLETED
    assert session.amount_paid == session.amount_total == 5000
    assert session.version == 4
    codes = list(session.tickets.values_list("code", flat=True))
    assert len(codes) == 2 and all(code in status_page for code in codes)
    assert list(Transition.objects.filter(session=session).values_list("trigger", flat=True)) == [
        "start_payment", "pay", "complete",
    ]
    events = list(OutboxEvent.objects.filter(session=session).order_by("id"))
    assert [e.type for e in events] == [
        "checkout.session.created", "checkout.session.paid", "checkout.session.completed",
    ]
    paid, completed = events[1].payload["data"]["object"], events[2].payload["data"]["object"]
    assert (paid["status"], paid["version"]) == ("paid", 3)
    assert (completed["status"], completed["version"], completed["amount_paid"]) == ("completed", 4, 5000)
    assert completed["customer"] == {"name": "Ana Silva", "email": "ana@example.com"}
    assert completed["answers"]["T-shirt size"] == "M"
    assert completed["line_items"][0]["quantity"] == 2 and completed["event"] == session.event.public_id
    assert Delivery.objects.filter(event__in=events).count() == 3
    answers = dict(session.answers.values_list("question__text", "value"))
    assert answers == {"Company": answers["Company"], "T-shirt size": "M"} and answers["Company"].startswith("answer")
    assert session.line_items.get().ticket_type.reserved == 2
    assert len(mail.outbox) == 1 and codes[0] in mail.outbox[0].body


def _details_counts(event, ticket_type, capture):
    """Statements of a first POST of the details, and of a second one changing every answer."""
    from django.test import Client

    client = Client()
    flow = Flow(client, event, ticket_type, capture)
    url = event.get_absolute_url()
    form = flow.step("POST tickets", lambda: client.post(url, {f"qty_{ticket_type.public_id}": "1"}))["Location"]
    details = flow.answers()
    flow.step("first POST details", lambda: client.post(form, details))
    changed = {key: (value + "!" if key.startswith("q_") and value != "M" else value) for key, value in details.items()}
    flow.step("second POST details", lambda: client.post(form, changed))
    session = CheckoutSession.objects.get(public_id=form.strip("/").split("/")[-1])
    texts = session.answers.exclude(question__kind="choice").values_list("value", flat=True)
    assert texts and all(value.endswith("!") for value in texts)
    assert session.answers.count() == Question.objects.filter(event=event).count()
    return flow.counts["first POST details"], flow.counts["second POST details"]


def test_saving_details_costs_the_same_statements_however_many_questions(event, ticket_type,
                                                                         django_capture_on_commit_callbacks):
    """No statement per answer: answers are written in bulk under the session's lock."""
    with_two = _details_counts(event, ticket_type, django_capture_on_commit_callbacks)
    for position in range(6):
        Question.objects.create(event=event, text=f"Extra {position}", kind="text", position=10 + position)
    with_eight = _details_counts(event, ticket_type, django_capture_on_commit_callbacks)
    assert with_eight == with_two
    assert with_two[0] <= ceiling("POST details")
    # Changing them voids the gate's approval, which is re-read under the lock: a few more.
    assert with_two[1] <= ceiling("POST details") + 3
