"""A gate turned on after the attendee's details were accepted is asked before payment."""

import pytest

from payments.models import Payment
from tests.servers import Reply
from webhooks.models import GateSettings

from .conftest import start_checkout, submit_details

pytestmark = pytest.mark.django_db


def test_details_accepted_with_the_gate_off_are_not_approved_for_a_gate_turned_on_later(client, event, gate, gate_server):
    server = gate_server(Reply(403, {"message": "Not on the list"}))
    GateSettings.objects.filter(pk=gate.pk).update(enabled=False)
    session = start_checkout(client, event)
    assert submit_details(client, session)["Location"] == f"/c/{session.public_id}/review/"
    assert server.requests == []

    GateSettings.objects.filter(pk=gate.pk).update(enabled=True)
    response = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    assert response["Location"] == f"/c/{session.public_id}/"  # back to the form: the gate must be asked
    assert not Payment.objects.exists()
    denied = submit_details(client, session)
    assert "Not on the list" in denied.content.decode() and len(server.verified) == 1
    assert not Payment.objects.exists()
