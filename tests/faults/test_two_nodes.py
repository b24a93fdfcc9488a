"""Two web nodes and two workers on one database and one broker: the rules hold across nodes.

Every piece of state a rule depends on lives in PostgreSQL (holds and the per-address
counts taken from them, the gate's breaker and the gate calls its rate limit counts, the
idempotency records' table) or in the broker; no rule depends on one process's memory. This
runs the deployment docs/operations.md's capacity model describes — two gunicorn nodes,
two Celery workers (one with beat) — with an attendee's requests alternating between the
nodes, as a load balancer without sticky sessions sends them.
"""

import re
import uuid

import pytest
import requests

from checkout.models import CheckoutSession
from ievents.models import ApiKey, Event, Organization
from tests.servers import LocalServer, Reply
from tests.waiting import wait_for
from webhooks.models import GateSettings

from .stack import (
    CSRF,
    DedupReceiver,
    all_delivered,
    check_invariants,
    event_ids,
    free_port,
    run_database_url,
    seed,
    wait_until_nothing_more_can_be_sent,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

HELD_PER_ADDRESS = 4
BREAKER_FAILURES = 3
# The nodes sit behind one trusted proxy that names the attendee in X-Forwarded-For; loopback
# is not exempt from the limits here, as it is in development.
NODE_ENV = {"TRUSTED_PROXY_COUNT": "1", "CHECKOUT_LIMITS_EXEMPT_ADDRESSES": "",
            "CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS": str(HELD_PER_ADDRESS), "CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS": "100",
            "GATE_BREAKER_FAILURES": str(BREAKER_FAILURES), "GATE_BREAKER_COOLDOWN_SECONDS": "300"}


def take_tickets(node: str, setup: dict, address: str, quantity: int = 1) -> requests.Response:
    """Pick tickets on the event page of ``node`` as an attendee at ``address``."""
    http = requests.Session()
    http.headers["X-Forwarded-For"] = address
    page = http.get(node + setup["event_path"], timeout=30)
    token = CSRF.search(page.text).group(1)
    answer = http.post(page.url, data={"csrfmiddlewaretoken": token, setup["qty_field"]: str(quantity)}, timeout=30)
    answer.http = http
    return answer


def test_two_nodes_and_two_workers_keep_limits_idempotency_breaker_and_delivery(processes):
    database = run_database_url()
    port = free_port()
    setup = seed(f"http://127.0.0.1:{port}/hook")
    receiver = processes.add(DedupReceiver(setup["secret"], port=port).start())
    redis = processes.redis()
    nodes = [processes.web(database, redis.url, **NODE_ENV).url, processes.web(database, redis.url, **NODE_ENV).url]
    workers = [processes.worker("node1", database, redis.url, beat=True),
               processes.worker("node2", database, redis.url, beat=False)]

    # The per-address hold cap counts the holds of every node: half taken on each, then both refuse.
    for n in range(HELD_PER_ADDRESS):
        assert re.search(r"/c/cs_\w+/$", take_tickets(nodes[n % 2], setup, "203.0.113.7").url)
    for node in nodes:
        refused = take_tickets(node, setup, "203.0.113.7")
        assert refused.status_code == 429, (node, refused.status_code)
    assert take_tickets(nodes[0], setup, "203.0.113.8").status_code == 200  # another attendee is not held back

    # An Idempotency-Key answered by one node is replayed by the other: one session, one answer.
    key = ApiKey.issue(Organization.objects.get(slug="faults"))[1]
    event = Event.objects.get(pk=setup["event_id"])
    body = {"event": event.public_id, "line_items": [{"ticket_type": event.ticket_types.get().public_id, "quantity": 1}]}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())}
    first = requests.post(nodes[0] + "/v1/checkout/sessions", json=body, headers=headers, timeout=30)
    again = requests.post(nodes[1] + "/v1/checkout/sessions", json=body, headers=headers, timeout=30)
    assert first.status_code == 201 and again.status_code == 201, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert CheckoutSession.objects.filter(public_id=first.json()["id"]).count() == 1

    # A failing gate opens the breaker for the event whichever node saw the failures; once it
    # is open, neither node calls the gate.
    gate = processes.add(LocalServer(Reply(status=500)).start())
    GateSettings.objects.create(event=event, enabled=True, url=gate.url + "/validate", timeout_ms=2000)

    def continue_on(node: str, address: str) -> str:
        picked = take_tickets(node, setup, address)
        token = CSRF.search(picked.text).group(1)
        answer = picked.http.post(picked.url, data={"csrfmiddlewaretoken": token, "name": "Ana Silva",
                                                    "email": "ana@example.com", setup["size_field"]: "M"}, timeout=30)
        assert answer.status_code == 200 and "/review/" not in answer.url  # blocked: the gate failed
        return answer.text

    for n in range(BREAKER_FAILURES):  # one attendee each, from distinct addresses, on alternating nodes
        continue_on(nodes[n % 2], f"198.51.100.{n + 1}")
    wait_for(lambda: GateSettings.objects.get(event=event).breaker_open_until is not None, 10, "the breaker to open")
    called = len(gate.requests)
    assert called == BREAKER_FAILURES
    for n, node in enumerate(nodes):
        continue_on(node, f"198.51.100.{50 + n}")
    assert len(gate.requests) == called  # the open breaker, read from the database by both nodes

    # Two workers, one broker: every notification delivered exactly once.
    wait_for(lambda: all_delivered(database), 30, "every notification to be delivered")
    wait_until_nothing_more_can_be_sent(workers, queued=redis.queued)
    events = event_ids(database)
    assert set(receiver.processed) == events and set(receiver.processed.values()) == {1}
    assert not receiver.repeats
    found = check_invariants(database, settled=False)
    assert found.ok(), found.problems
