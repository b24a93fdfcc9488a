"""The example gate server in docs/gate.md works as documented, end to end."""

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webhooks.models import GateSettings

from .conftest import start_checkout, submit_details
from .test_gate_checkout import alert_of

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parents[2] / "docs" / "gate.md"


def example_source() -> str:
    match = re.search(r"<!-- example-gate-server -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/gate.md lost its example gate server"
    return match.group(1)


@pytest.fixture
def example_gate(tmp_path, gate):
    script = tmp_path / "gate_server.py"
    script.write_text(example_source())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"GATE_SECRET": gate.secret, "ALLOWED_DOMAINS": "acme.com, acme.pt", "PORT": str(port), "PATH": "/usr/bin"}
    process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        GateSettings.objects.filter(pk=gate.pk).update(url=f"http://127.0.0.1:{port}/check")
        yield
    finally:
        process.terminate()
        process.wait(5)


def test_the_documented_example_gate_allows_whitelisted_domains_and_denies_others(client, event, gate, example_gate):
    session = start_checkout(client, event)
    assert submit_details(client, session, email="Ana@ACME.pt").status_code == 302
    response = submit_details(client, start_checkout(client, event), email="eve@evil.test")
    assert alert_of(response) == "Tickets for this event are for acme.com, acme.pt addresses only."


def test_the_documented_example_gate_refuses_a_wrong_signature(client, event, gate, example_gate):
    from webhooks.signing import rotate_secret

    rotate_secret(gate)  # the example still has the old secret: both signatures are sent, it verifies
    assert submit_details(client, start_checkout(client, event), email="ana@acme.com").status_code == 302
    GateSettings.objects.filter(pk=gate.pk).update(previous_secret="", previous_secret_expires_at=None)
    response = submit_details(client, start_checkout(client, event), email="ana@acme.com")
    assert alert_of(response) == gate.denial_message  # 401 without a message: the event's own denial text
