"""The HTTP layer: stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 keep-alive, plus the knobs.

One thread per connection: a delayed request (``latency_ms``) sleeps in its own
thread and never holds up another; numpy, GDAL, pyproj and zlib release the GIL for
the heavy parts of a pixel request. See docs/server.md for why this stack.

Per request, in order: check the ``Host`` header (on a loopback server), count it,
read the body (size-capped), check the bearer token, check the concurrency cap, draw a
fault, handle, sleep the latency, send. ``/_stats`` and ``/_stats/reset`` are only
checked for the host and the token; the discovery document is exempt from the token and
from faults (like the real one, it is public). Error bodies never show the root's
absolute path.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import struct
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eexarray.server.api import Api, Reply, classify, error_reply, json_reply
from eexarray.server.errors import UNAUTHENTICATED_MESSAGE, ApiError
from eexarray.server.options import FaultDice, ServerOptions
from eexarray.server.stats import Stats

logger = logging.getLogger("eexarray.server")

FAULT_MESSAGES = {
    429: "Quota exceeded for quota metric 'Requests' of service 'earthengine.googleapis.com' (injected fault).",
    503: "The service is currently unavailable (injected fault).",
}
_CHUNK_LINE_LIMIT = 1024
# Every socket operation of a connection times out after this long: an idle keep-alive
# connection, or a client that stops mid request line, headers or body, is closed.
IDLE_TIMEOUT_SECONDS = 300
# The names a server bound to a loopback address answers to (with its port): a web page
# whose own name was re-pointed at 127.0.0.1 (DNS rebinding) sends its name as Host.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ROOT_PLACEHOLDER = "<root>"


class _BodyError(Exception):
    def __init__(self, error: ApiError):
        self.error = error


class EarthEngineHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # many clients connecting at once must not be refused

    def __init__(self, address: tuple[str, int], api: Api, options: ServerOptions):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.api = api
        self.options = options
        self.stats = Stats()
        self.dice = FaultDice(options.faults)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.allowed_hosts = _allowed_hosts(self.server_address[0])
        directory = api.catalog.directory
        self.hidden_paths = list(directory.absolute_paths) if directory is not None else []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        # An AF_INET/AF_INET6 socket reports its host as str; typeshed also allows bytes.
        host_text = host if isinstance(host, str) else bytes(host).decode("ascii")
        host_text = f"[{host_text}]" if ":" in host_text else host_text
        return f"http://{host_text}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so a stopped server frees its threads and port."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _allowed_hosts(address: Any) -> frozenset[str] | None:
    """The accepted ``Host`` names (lower case) when bound to a loopback address, else None (any).

    Any port is accepted with them: a rebinding page sends its own name, which is never a
    loopback name, while an SSH tunnel or port forward (``localhost:9000`` to this port)
    sends a loopback name with another port and must keep working.
    """
    host = address if isinstance(address, str) else bytes(address).decode("ascii")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        return None
    if not loopback:
        return None
    return frozenset({*LOOPBACK_NAMES, f"[{host}]" if ":" in host else host})


# A Host header: a name or a bracketed IPv6 address, then an optional port.
_HOST_HEADER = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]]+)(?::[0-9]{1,5})?")


def host_name(header: str) -> str | None:
    """The lower-case name of a ``Host`` header without its port; None when malformed."""
    found = _HOST_HEADER.fullmatch(header.strip().lower())
    return found.group(1) if found else None


def hide_paths(text: str, paths: list[str]) -> str:
    """``text`` with every absolute root path replaced by ``<root>``."""
    for path in paths:
        text = text.replace(path, ROOT_PLACEHOLDER)
    return text


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_SECONDS
    server_version = "eexarray-server"
    sys_version = ""
    server: EarthEngineHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The standard library answers a method without a do_ handler (HEAD, OPTIONS, TRACE,
        # anything) with 501; for this API it is a method not allowed, a 4xx like any other.
        if code != HTTPStatus.NOT_IMPLEMENTED:
            super().send_error(code, message, explain)
            return
        self.close_connection = True  # the body, if any, is not read
        message = f"Method {self.command[:40]!r} is not allowed: this server answers GET, POST, PUT, PATCH and DELETE."
        error = ApiError(405, message, "METHOD_NOT_ALLOWED")
        self._send(error_reply(error, "other"), count=False, with_body=self.command != "HEAD")

    # -- request flow -----------------------------------------------------------------
    def _serve(self, http_method: str) -> None:
        server = self.server
        path = self.path.split("?", 1)[0]
        if not self._host_allowed():
            return
        if path in ("/_stats", "/_stats/reset"):
            self._serve_stats(http_method, path)
            return
        method = classify(http_method, self.path)
        server.stats.count_request(method)
        user_project = self.headers.get("X-Goog-User-Project")
        if user_project:
            server.stats.count_user_project(user_project[:200])
        try:
            body = self._read_body()
        except _BodyError as problem:
            self.close_connection = True
            self._send(error_reply(problem.error, method))
            return
        if method != "discovery" and not self._token_valid():
            self._send(error_reply(ApiError(401, UNAUTHENTICATED_MESSAGE, "UNAUTHENTICATED"), method))
            return
        if not server.stats.enter(server.options.max_concurrency):
            limit = server.options.max_concurrency
            message = f"Too many concurrent requests: this server allows {limit} at once (max_concurrency)."
            self._send(error_reply(ApiError(429, message, "RESOURCE_EXHAUSTED"), method))
            return
        try:
            reply, fault = self._answer(http_method, method, body)
        finally:
            # A request stops counting as in flight once its answer is ready, before it is
            # written: the client holds its own slot until it has read the answer, so the
            # server never counts more requests than a client lets out (no spurious 429
            # when client and server use the same cap).
            server.stats.leave()
        if reply is None:
            self._reset()
            return
        truncate = fault == "truncate"
        if reply.pixel_record is not None and reply.status == 200 and not truncate:
            server.stats.count_pixels(reply.pixel_record)
        self._send(reply, truncate=truncate)

    def _answer(self, http_method: str, method: str, body: bytes) -> tuple[Reply | None, str | None]:
        server = self.server
        fault = server.dice.draw() if method != "discovery" else None
        if fault is not None:
            server.stats.count_fault(fault)
        if fault == "reset":
            time.sleep(server.options.latency_seconds(0))
            return None, fault  # no answer at all: the connection is dropped
        if fault is not None and fault.isdigit():
            code = int(fault)
            message = FAULT_MESSAGES.get(code, f"Injected fault {code}.")
            reply = error_reply(ApiError(code, message), method)
        else:
            reply = self._handle(http_method, method, body)
        time.sleep(server.options.latency_seconds(len(reply.body)))
        return reply, fault

    def _handle(self, http_method: str, method: str, body: bytes) -> Reply:
        host = self.headers.get("Host")
        base_url = f"http://{host}" if host else self.server.url
        try:
            return self.server.api.handle(http_method, self.path, body, base_url)
        except Exception as error:  # noqa: BLE001 - a server bug: answer 500 as the real service would, log the trace
            logger.error("Internal error on %s %s\n%s", http_method, self.path, traceback.format_exc())
            return error_reply(ApiError(500, f"Internal error: {type(error).__name__}: {error}", "INTERNAL"), method)

    def _host_allowed(self) -> bool:
        """False (after answering 403) for a ``Host`` a loopback server does not answer to."""
        allowed = self.server.allowed_hosts
        host = self.headers.get("Host")
        # No Host header (HTTP/1.0 clients): not a browser, so not a rebinding attack.
        if allowed is None or host is None or host_name(host) in allowed:
            return True
        self.close_connection = True  # the body, if any, is not read
        names = ", ".join(sorted(allowed))
        message = (
            f"Host {host[:200]!r} is not this server's name: a server bound to a loopback address answers "
            f"only requests for {names} (with any port; a defence against DNS rebinding). Serve on another "
            "address (--host / host=, with --token) to answer other names."
        )
        self._send(error_reply(ApiError(403, message, "PERMISSION_DENIED"), "other"), count=False)
        return False

    def _token_valid(self) -> bool:
        token = self.server.options.token
        return token is None or self.headers.get("Authorization", "") == f"Bearer {token}"

    def _serve_stats(self, http_method: str, path: str) -> None:
        if not self._token_valid():  # the counters show asset names and request sizes; reset is a write
            self._read_body_quietly()
            self._send(error_reply(ApiError(401, UNAUTHENTICATED_MESSAGE, "UNAUTHENTICATED"), "stats"), count=False)
            return
        if path == "/_stats" and http_method == "GET":
            self._send(json_reply(self.server.stats.snapshot(), "stats"), count=False)
        elif path == "/_stats/reset" and http_method == "POST":
            self._read_body_quietly()
            self.server.stats.reset()
            self._send(json_reply({}, "stats"), count=False)
        else:
            self._read_body_quietly()
            error = ApiError(405, "Use GET /_stats or POST /_stats/reset.", "METHOD_NOT_ALLOWED")
            self._send(error_reply(error, "stats"), count=False)

    # -- body -------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        limit = self.server.options.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        try:
            length = int(text)
            if length < 0:
                raise ValueError
        except ValueError:
            raise _BodyError(ApiError(400, f"Invalid Content-Length {text!r}.")) from None
        if length > limit:
            raise _BodyError(ApiError(413, f"Request body of {length} bytes exceeds the limit of {limit} bytes."))
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_CHUNK_LINE_LIMIT)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(ApiError(400, "Malformed chunked request body.")) from None
            if size == 0:
                while self.rfile.readline(_CHUNK_LINE_LIMIT) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > limit:
                raise _BodyError(ApiError(413, f"Request body exceeds the limit of {limit} bytes."))
            parts.append(self.rfile.read(size))
            self.rfile.readline(_CHUNK_LINE_LIMIT)

    def _read_body_quietly(self) -> None:
        try:
            self._read_body()
        except _BodyError:
            self.close_connection = True

    # -- response ---------------------------------------------------------------------
    def _send(self, reply: Reply, *, truncate: bool = False, count: bool = True, with_body: bool = True) -> None:
        if reply.status >= 400 and self.server.hidden_paths:
            reply = self._without_paths(reply)
        if count:
            self.server.stats.count_response(reply.status, len(reply.body))
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Error"
        headers = [
            f"HTTP/1.1 {reply.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
        ]
        headers += [f"{key}: {value}" for key, value in reply.headers.items()]
        if self.close_connection or truncate:
            headers.append("Connection: close")
        head = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1")
        body = reply.body[: len(reply.body) // 2] if truncate else reply.body
        if not with_body:  # a HEAD answer: the headers of the answer, no body
            body = b""
        try:
            if len(body) <= 65536:
                self.wfile.write(head + body)
            else:
                self.wfile.write(head)
                self.wfile.write(memoryview(body))
        except OSError:
            self.close_connection = True
            return
        if truncate:  # the promised Content-Length never arrives: close mid-body
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _without_paths(self, reply: Reply) -> Reply:
        """An error reply whose message does not name the root's absolute path (a backstop:
        errors are written with names relative to the root)."""
        try:
            document = json.loads(reply.body)
            message = document["error"]["message"]
        except (ValueError, TypeError, KeyError):
            return reply
        if not isinstance(message, str):
            return reply
        hidden = hide_paths(message, self.server.hidden_paths)
        if hidden == message:
            return reply
        document["error"]["message"] = hidden
        body = json.dumps(document, separators=(",", ":")).encode()
        return Reply(reply.status, body, reply.content_type, reply.method, reply.pixel_record, reply.headers)

    def _reset(self) -> None:
        """Drop the connection with a TCP reset, without any response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # rfile holds a reference that defers the socket's close; wfile stays open (it
            # holds none) because BaseHTTPRequestHandler flushes it after every request.
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass
