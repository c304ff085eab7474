"""A TCP proxy for the test S3 server that makes chosen requests slow: real slowness, nothing mocked.

The catalog (or a worker) is pointed at the proxy instead of the S3 endpoint; bytes pass through
unchanged (SigV4 signatures stay valid), except that a request whose request line matches a rule
is held for a while before it is forwarded. Tests use it to keep a commit or a job in flight
while they stop the process that runs it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

METHODS = (b"GET ", b"HEAD ", b"PUT ", b"POST ", b"DELETE ")


@dataclass(frozen=True)
class _Rule:
    method: bytes | None  # None: any method
    path_contains: bytes
    seconds: float


class DelayProxy:
    """Forwards loopback TCP connections to ``upstream`` (an ``http://host:port`` URL)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, upstream
        self.upstream = (parts.hostname, parts.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held = threading.Event()  # set whenever a request is being held
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False

    def start(self) -> DelayProxy:
        threading.Thread(target=self._accept, name="delay-proxy", daemon=True).start()
        return self

    def hold(self, path_contains: str, seconds: float, method: str | None = None) -> None:
        """From now on, hold each request whose path contains ``path_contains`` for ``seconds``."""
        with self._lock:
            self._rules.append(_Rule(method.encode() + b" " if method else None, path_contains.encode(), seconds))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
        self.held.clear()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    # --- forwarding ---------------------------------------------------------------------------

    def _delay_for(self, chunk: bytes) -> float:
        if not chunk.startswith(METHODS):
            return 0.0  # the rest of a request (its body), or not HTTP
        request_line = chunk.split(b"\r\n", 1)[0]
        with self._lock:
            rules = list(self._rules)
        return max(
            (
                r.seconds
                for r in rules
                if (r.method is None or request_line.startswith(r.method)) and r.path_contains in request_line
            ),
            default=0.0,
        )

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, requests: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if requests and (delay := self._delay_for(chunk)):
                    self.held.set()
                    time.sleep(delay)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
