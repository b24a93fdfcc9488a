"""Real HTTP servers on 127.0.0.1 for tests: receivers, gates, slow and hostile peers.

A ``LocalServer`` runs in a thread and answers each request with what its ``respond``
function returns (a ``Reply``), recording every request it got. A reply can be slow
(``delay``), trickle its body a byte at a time, hang until the server stops, or send a
huge body, so the client's deadline and size cap are tested against real sockets.

    with LocalServer(lambda req: Reply(200, {"ok": True})) as server:
        call(server.url)
        assert server.requests[0].json()["type"] == "checkout.validate"
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list | None = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds from the request's arrival (its first line read) to the status line
    trickle: float = 0.0  # seconds between body bytes (0: send at once)
    hang: bool = False  # accept, read the request, never answer (until the server stops)
    huge: int = 0  # send this many bytes of body after ``body``
    no_length: bool = False  # no Content-Length: the body ends when the connection closes

    def encoded(self) -> bytes:
        if isinstance(self.body, dict | list):
            self.headers.setdefault("Content-Type", "application/json")
            return json.dumps(self.body).encode()
        if isinstance(self.body, str):
            return self.body.encode()
        return self.body or b""


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float
    peer_port: int = 0  # the client's port: the same port twice means a reused connection

    def json(self):
        return json.loads(self.body)


class LocalServer:
    def __init__(self, respond: Callable[[Received], Reply] | Reply | None = None, *,
                 tls: tuple[str, str] | None = None, port: int = 0):
        """``tls``: (certificate file, key file) to serve HTTPS instead of HTTP.
        ``port``: listen on this one (a receiver back where it was); 0 for any free port."""
        if respond is None:
            respond = Reply()
        self.respond = respond if callable(respond) else (lambda _req, reply=respond: reply)
        self.requests: list[Received] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, the body waits for
            # the client's delayed ACK (~40 ms) on a kept-alive connection, which would
            # swamp every latency we measure against these servers.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def parse_request(self):
                # The request line is in: the request has arrived. A reply's delay counts from
                # here, so a server told to answer in 20 ms does, whatever its own parsing costs.
                self.arrived = time.monotonic()
                return super().parse_request()

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                    body, time.monotonic(), self.client_address[1])
                with server._lock:
                    server.requests.append(received)
                reply = server.respond(received)
                if reply.hang:
                    server.stopping.wait(120)
                    return
                if reply.delay and server.stopping.wait(max(0.0, reply.delay - (time.monotonic() - self.arrived))):
                    return
                payload = reply.encoded()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(payload) + reply.huge))
                self.end_headers()
                try:
                    if reply.trickle:
                        for i in range(len(payload)):
                            self.wfile.write(payload[i:i + 1])
                            self.wfile.flush()
                            if server.stopping.wait(reply.trickle):
                                return
                    else:
                        self.wfile.write(payload)
                    chunk = b"x" * 65536
                    left = reply.huge
                    while left > 0 and not server.stopping.is_set():
                        self.wfile.write(chunk[:left])
                        left -= len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET = do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hook"

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def self_signed_certificate(directory, host: str = "localhost") -> tuple[str, str]:
    """A self-signed certificate for the name ``host`` only, and its key, as files in
    ``directory``; the certificate file doubles as the CA bundle a client trusts it with."""
    import datetime
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(directory)
    cert_file, key_file = directory / f"{host}.crt", directory / f"{host}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)
