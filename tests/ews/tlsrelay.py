"""A small TCP relay for the EWS client tests, counting the connections it carries.

Two modes: a plain TCP relay (TLS, if any, still ends at the server: a load balancer that
passes TLS through), and a TLS-terminating relay that presents its own certificate and
re-encrypts to the server, as a TLS-offloading load balancer, a reverse proxy or TLS
inspection does. Behind the second, the server certificate a client sees is not the server's,
so an NTLM channel binding computed from it cannot match the one the server expects.

Each connection has its own thread. Reads never wait: the thread waits for either side to
have something; a connection idle for IO_TIMEOUT is closed, and a write waits at most
IO_TIMEOUT, so a test never hangs.
"""

import select
import socket
import ssl
import threading

IO_TIMEOUT = 30.0  # seconds


class Relay:
    """Listens on 127.0.0.1 (port chosen at run time) and relays every connection to
    127.0.0.1:target_port. With cert and key it terminates TLS with that certificate and
    opens TLS to the target, verified against upstream_ca."""

    def __init__(self, target_port, cert=None, key=None, upstream_ca=None):
        self.target_port = target_port
        self.server_ctx = None
        self.client_ctx = None
        if cert is not None:
            self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.server_ctx.load_cert_chain(cert, key)
            self.client_ctx = ssl.create_default_context(cafile=upstream_ca)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.errors = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, scheme="https", path="/EWS/Exchange.asmx"):
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        upstream = None
        try:
            conn.settimeout(IO_TIMEOUT)
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=IO_TIMEOUT)
            if self.server_ctx is not None:
                conn = self.server_ctx.wrap_socket(conn, server_side=True)
                upstream = self.client_ctx.wrap_socket(upstream, server_hostname="127.0.0.1")
            self._pump(conn, upstream)
        except (OSError, ssl.SSLError) as e:
            if not self.stopping:
                with self.lock:
                    self.errors.append(repr(e))
        finally:
            for s in (conn, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    @staticmethod
    def _pump(a, b):
        """Copies bytes both ways until either side closes. One thread serves both
        directions: an SSL socket must not be read and written from two threads."""
        socks = [a, b]
        while True:
            ready = [s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select(socks, [], [], IO_TIMEOUT)
                if not ready:
                    return
            for s in ready:
                data = Relay._read(s)
                if data is None:
                    continue
                if not data:
                    return
                (b if s is a else a).sendall(data)

    @staticmethod
    def _read(s):
        """What s has to give now: bytes, b"" at its end, or None if nothing yet.

        The read does not wait. A readable socket need not hold application data: under TLS
        1.3 the server sends its session tickets after the handshake, often before the
        client's first request. A read that waited would consume them and then wait for the
        server's answer to a request this thread has not forwarded yet, until IO_TIMEOUT."""
        s.settimeout(0)
        try:
            return s.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return None
        finally:
            s.settimeout(IO_TIMEOUT)

    def stop(self):
        self.stopping = True
        self.sock.close()
