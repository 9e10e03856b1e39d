"""Tiny local servers that misbehave in time: silent, dripping bytes, or slow to fail.

``HangingServer`` speaks raw sockets (one thread per connection, all daemons), so the
client under test sees exactly the bytes and pauses written here. ``PixelsHangProxy``
forwards GETs (metadata) to a real local server and never answers POSTs (pixels), so a
Dataset opens normally and then its compute hangs.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
import urllib.request


class HangingServer:
    """Accepts connections and, per ``mode``, answers nothing or drips bytes.

    Modes: ``silent`` (reads the request, sends nothing), ``drip_headers`` (the status line,
    one byte per ``interval``), ``drip_body`` (headers with a Content-Length of 1 MiB,
    then one body byte per ``interval``), ``drip_unsized`` (a JSON body without
    Content-Length, then spaces one per ``interval``: valid JSON wherever it is cut),
    ``slow_503`` (a complete 503, ``Retry-After: 5``, after ``interval`` seconds), ``slow_ok`` (a complete JSON
    body, one byte per ``interval``).
    """

    def __init__(self, mode: str, interval: float = 0.5, tls: ssl.SSLContext | None = None) -> None:
        self.mode = mode
        self.interval = interval
        self.tls = tls  # a server-side context: speak HTTPS
        self.connections = 0
        self.requests = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _read_request(self, connection: socket.socket) -> bool:
        connection.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    return False
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(body) < length:
                body += connection.recv(65536)
        except OSError:
            return False
        self.requests += 1
        return True

    def _drip(self, connection: socket.socket, data: bytes) -> None:
        for index in range(len(data)):
            if self._stop.wait(self.interval):
                return
            connection.sendall(data[index : index + 1])

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self.tls is not None:
                connection.settimeout(5)
                connection = self.tls.wrap_socket(connection, server_side=True)
            with connection:
                while self._read_request(connection):
                    if self.mode == "silent":
                        self._stop.wait()
                    elif self.mode == "drip_headers":
                        self._drip(connection, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" + b" " * 100000)
                    elif self.mode == "drip_body":
                        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
                        self._drip(connection, b"\x00" * 1048576)
                    elif self.mode == "drip_unsized":
                        connection.sendall(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"ok": true}')
                        self._drip(connection, b" " * 1048576)
                    elif self.mode == "slow_503":
                        if self._stop.wait(self.interval):
                            return
                        body = b'{"error": {"code": 503, "message": "busy"}}'
                        connection.sendall(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            + b"Retry-After: 5\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode()
                            + body
                        )
                        continue
                    elif self.mode == "slow_ok":
                        body = b'{"ok": true}'
                        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
                        self._drip(connection, body)
                        continue
                    return
        except OSError:
            pass  # the client hung up: what a deadline does


class PixelsHangProxy:
    """GETs go to ``upstream`` (a real local server); POSTs (pixels, computes) never get an answer."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.posts = 0
        self.release = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                with urllib.request.urlopen(proxy.upstream + self.path, timeout=30) as upstream:
                    body = upstream.read()
                    status = upstream.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                proxy.posts += 1
                proxy.release.wait()  # silent until the test ends

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> PixelsHangProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition()`` until true or ``timeout`` seconds pass."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
