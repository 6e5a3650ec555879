"""The test relay itself (tests/ews/tlsrelay.py): terminating TLS, it forwards a request that
follows the server's TLS 1.3 session tickets at once, instead of stalling the connection for
IO_TIMEOUT (the cause of a flake in tests/cli/test_check.py behind the relay)."""

import socket
import ssl
import threading
import time

from tlsrelay import Relay

ANSWER_WITHIN = 5.0  # seconds; far below tlsrelay.IO_TIMEOUT


class QuietServer:
    """A TLS 1.3 server that, like a web server, sends nothing but its session tickets until
    it has a request: it answers each line with "pong\\n"."""

    def __init__(self, cert, key):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.handshaken = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.settimeout(30)
        with self.ctx.wrap_socket(conn, server_side=True) as tls:  # sends the tickets
            self.handshaken.set()
            f = tls.makefile("rwb")
            for _ in f:
                f.write(b"pong\n")
                f.flush()

    def stop(self):
        self.sock.close()


def test_request_after_session_tickets_is_relayed(certs):
    server = QuietServer(certs["cert"], certs["key"])
    relay = Relay(server.port, cert=certs["cert"], key=certs["key"], upstream_ca=certs["ca"])
    try:
        ctx = ssl.create_default_context(cafile=certs["ca"])
        with socket.create_connection(("127.0.0.1", relay.port), timeout=ANSWER_WITHIN) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert server.handshaken.wait(ANSWER_WITHIN)
            # Let the tickets reach the relay before the request does: the order that stalled.
            time.sleep(0.3)
            assert tls.version() == "TLSv1.3"
            start = time.monotonic()
            tls.sendall(b"ping\n")
            assert tls.makefile("rb").readline() == b"pong\n"
            assert time.monotonic() - start < ANSWER_WITHIN
        assert relay.errors == []
    finally:
        relay.stop()
        server.stop()
