"""Fixtures for the pre-payment gate: a real gate server that verifies our signatures.

``gate_server(respond)`` starts a ``LocalServer`` whose every request is first verified with
the ``standardwebhooks`` package under the event gate's secret; a request that fails
verification is answered 401 and recorded in ``server.bad_signatures``, so a test expecting
anything else fails loudly.
"""

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from checkout.models import CheckoutSession
from ievents.models import Question
from tests.servers import LocalServer, Reply
from webhooks.models import GateSettings


class GateServer(LocalServer):
    def __init__(self, respond, secret_of):
        self.bad_signatures: list[str] = []
        self.verified: list[dict] = []

        def verifying(req):
            try:
                payload = Webhook(secret_of()).verify(req.body, req.headers)
            except WebhookVerificationError as exc:
                self.bad_signatures.append(str(exc))
                return Reply(401, {"message": "bad signature"})
            self.verified.append(payload)
            return respond(req) if callable(respond) else respond

        super().__init__(verifying)


@pytest.fixture
def gate(event):
    return GateSettings.objects.create(event=event, enabled=True, url="http://127.0.0.1:9/unused", timeout_ms=1000)


@pytest.fixture
def gate_server(gate):
    """Start a verifying gate server and point the event's gate at it."""
    started = []

    def start(respond=None, *, url_suffix="") -> GateServer:
        server = GateServer(respond if respond is not None else Reply(200, {}),
                            lambda: gate.secret).start()  # read in the server thread: no DB there
        started.append(server)
        GateSettings.objects.filter(pk=gate.pk).update(url=server.url + url_suffix)
        gate.refresh_from_db()
        return server

    yield start
    for server in started:
        server.stop()


def start_checkout(client, event, qty=2) -> CheckoutSession:
    ticket_type = event.ticket_types.get()
    response = client.post(event.get_absolute_url(), {f"qty_{ticket_type.public_id}": qty})
    assert response.status_code == 302
    return CheckoutSession.objects.order_by("-id").first()


def submit_details(client, session, *, email="ana@example.com", name="Ana Silva", size="M", remote_addr="127.0.0.1",
                   **extra):
    data = {"name": name, "email": email}
    questions = {q.text: q for q in Question.objects.filter(event=session.event)}
    if "T-shirt size" in questions:
        data[f"q_{questions['T-shirt size'].pk}"] = size
    data.update(extra)
    return client.post(f"/c/{session.public_id}/", data, REMOTE_ADDR=remote_addr)
