"""A TLS front for the test PostgreSQL server, which pgserver builds without OpenSSL.

It speaks PostgreSQL's own TLS negotiation: a client's SSLRequest is answered ``S``, the
connection is wrapped in TLS with a certificate made by ``openssl``, and the decrypted stream
goes on to the server's Unix socket. A client that does not ask for TLS is turned away, so a
test that gets an answer through it knows the answer came over TLS.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import subprocess
import threading
from pathlib import Path

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def make_certificate(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and 127.0.0.1, with its key."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


class TlsFront:
    """Listens on 127.0.0.1; ``port`` to connect to, ``tls_sessions`` handshakes completed."""

    def __init__(self, backend_socket: Path, cert: Path, key: Path) -> None:
        self.backend = backend_socket
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.tls_sessions = 0
        self.refused_plain = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if _read_exactly(client, 8) != SSL_REQUEST:
                with self._lock:
                    self.refused_plain += 1
                client.close()
                return
            client.sendall(b"S")
            secure = self.context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()
            return
        with self._lock:
            self.tls_sessions += 1
        backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            backend.connect(str(self.backend))
        except OSError:
            secure.close()
            return
        _relay(secure, backend)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _relay(secure: ssl.SSLSocket, plain: socket.socket) -> None:
    """Both directions in one thread (an SSL object is not to be read and written at once)."""
    try:
        while True:
            if not secure.pending():
                readable, _, _ = select.select([secure, plain], [], [], 60)
                if not readable:
                    return
            else:
                readable = [secure]
            if secure in readable:
                try:
                    chunk = secure.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                if not chunk:
                    return
                plain.sendall(chunk)
            if plain in readable:
                chunk = plain.recv(65536)
                if not chunk:
                    return
                secure.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (secure, plain):
            with contextlib.suppress(OSError):
                s.close()
