"""A stand-in for the catalog that costs almost nothing: the floor of any REST catalog's share.

It forwards the first request of each kind (method, path with query) to the real catalog, keeps
the answer's bytes, and from then on answers that kind of request from memory, on a bare asyncio
HTTP/1.1 server in a process of its own. An engine pointed at it does exactly the REST work it does
against the real catalog (same requests, same responses), while the server side costs tens of
microseconds. So ``(through the stand-in - direct) / through the stand-in`` is the part of an
engine's time that any catalog would cost, however fast: the engine's own REST client, its
planning through a catalog, its loopback round trips.

Only for benchmarks: answers are replayed whatever the request's credentials, body or time.

    python bench/replay_server.py http://127.0.0.1:8181    # prints the port it listens on
"""

from __future__ import annotations

import asyncio
import http.client
import sys
from urllib.parse import urlsplit

# Not replayed as recorded: per-response values, and the framing, which is set for the replayed body.
DROPPED_HEADERS = {"content-length", "connection", "transfer-encoding", "keep-alive", "date", "x-request-id"}


class ReplayServer:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.recorded: dict[tuple[str, str], bytes] = {}

    def _forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in {"host", "connection", "content-length"}}
            connection.request(method, target, body=body if body else None, headers=sent)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        head = [f"HTTP/1.1 {response.status} {response.reason}"]
        head += [f"{k}: {v}" for k, v in response.getheaders() if k.lower() not in DROPPED_HEADERS]
        head.append(f"Content-Length: {len(data)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (b"" if method == "HEAD" else data)

    async def _body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)  # the chunk and its CRLF (the last: no trailers)
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk[:-2])
        length = int(headers.get("content-length", "0") or 0)
        return await reader.readexactly(length) if length else b""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, target, _ = head[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in head[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await self._body(reader, headers)
                key = (method, target)
                if key not in self.recorded:
                    self.recorded[key] = await loop.run_in_executor(None, self._forward, method, target, headers, body)
                writer.write(self.recorded[key])
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def serve(self) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(ReplayServer(sys.argv[1]).serve())
