"""A forked worker (Celery prefork, gunicorn) gets its own connections and resolver."""

import json
import os

import pytest

from tests.servers import LocalServer, Reply
from webhooks import http


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_its_parents_connections_and_can_still_resolve():
    with LocalServer(Reply(200, {"ok": True})) as server:
        assert http.post(server.url.replace("127.0.0.1", "localhost"), b"{}", {}, timeout=2, allow_private=True).ok
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report and leave at once, whatever happens
            try:
                result = http.post(server.url.replace("127.0.0.1", "localhost"), b"{}", {}, timeout=2,
                                   allow_private=True)
                os.write(write, json.dumps([result.ok, result.error]).encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        ok, error = json.loads(os.read(read, 4096))
        os.close(read)
    assert ok, error
    assert len({req.peer_port for req in server.requests}) == 2  # the child opened its own connection
