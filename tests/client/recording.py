"""Local stand-ins for what a test must observe: a proxy recording every request (method,
path, query, headers) in front of the local server, and a fake OAuth token endpoint."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class _Server:
    handler: type[http.server.BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ProxyHandler(_Quiet):
    def _forward(self) -> None:
        owner = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        split = urllib.parse.urlsplit(self.path)
        owner.records.append(
            {
                "method": self.command,
                "path": split.path,
                "query": urllib.parse.parse_qs(split.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        )
        if owner.answer is not None:
            status, payload = owner.answer
            self.reply(status, json.dumps(payload).encode())
            return
        request = urllib.request.Request(owner.upstream + self.path, data=body, method=self.command)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, content, kind = response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, content, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        self.reply(status, content, kind or "application/octet-stream")

    do_GET = _forward  # noqa: N815 - http.server's names
    do_POST = _forward  # noqa: N815


class RecordingProxy(_Server):
    """Forwards to ``upstream`` (or answers ``answer = (status, json)`` itself) and records each request."""

    handler = _ProxyHandler

    def __init__(self, upstream: str | None = None, answer: tuple[int, Any] | None = None) -> None:
        self.upstream = upstream
        self.answer = answer
        self.records: list[dict[str, Any]] = []
        super().__init__()


class _TokenHandler(_Quiet):
    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner  # type: ignore[attr-defined]
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        owner.grants.append({key: values[0] for key, values in form.items()})
        if owner.refuse:
            self.reply(400, json.dumps({"error": "invalid_grant", "error_description": "Bad Request"}).encode())
            return
        self.reply(200, json.dumps({"access_token": owner.token, "expires_in": 3600, "token_type": "Bearer"}).encode())


class FakeTokenServer(_Server):
    """An OAuth token endpoint: every refresh grant is recorded and answered with ``token``."""

    handler = _TokenHandler

    def __init__(self, token: str, refuse: bool = False) -> None:
        self.token = token
        self.refuse = refuse
        self.grants: list[dict[str, str]] = []
        super().__init__()
