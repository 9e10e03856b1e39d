"""``serve()``: start the server in a background thread or a separate process.

The returned ``Server`` handle has ``.url``, ``.stop()``, ``.stats()`` and
``.reset_stats()`` and is a context manager. With ``process=True`` the server runs in
a ``multiprocessing`` "spawn" child so benchmark clients do not share its GIL; the
catalog is then pickled to the child (in-memory arrays are copied once).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eexarray.server.api import Api
from eexarray.server.catalog import Catalog
from eexarray.server.demo_catalog import build_demo_catalog
from eexarray.server.http_server import EarthEngineHttpServer
from eexarray.server.images import ServerCollection, ServerImage
from eexarray.server.options import DEFAULT_MAX_BODY_BYTES, FaultPlan, ServerOptions

CatalogEntries = Sequence[ServerImage | ServerCollection]
_PROCESS_START_TIMEOUT = 120.0


def default_catalog() -> list[ServerImage | ServerCollection]:
    """The built-in demo catalog."""
    return list(build_demo_catalog())


@dataclass(frozen=True)
class ServeConfig:
    """Everything needed to build a server; picklable, so it can cross into a child process."""

    root: str | None
    entries: tuple[ServerImage | ServerCollection, ...] | None  # None: the demo catalog (if no root)
    host: str
    port: int
    options: ServerOptions

    def build(self) -> EarthEngineHttpServer:
        entries = self.entries
        if entries is None:
            entries = tuple(default_catalog()) if self.root is None else ()
        catalog = Catalog.build(self.root, entries)
        return EarthEngineHttpServer(
            (self.host, self.port), Api(catalog, compute_budget=self.options.compute_budget), self.options
        )


class Server:
    """Handle of a running server: ``url``, ``stop()``, ``stats()``, ``reset_stats()``."""

    def __init__(
        self,
        url: str,
        *,
        httpd: EarthEngineHttpServer | None = None,
        thread: threading.Thread | None = None,
        process: Any = None,
        connection: Any = None,
        token: str | None = None,
    ):
        self.url = url
        self._token = token  # /_stats needs it too when set; never in the repr
        self._httpd = httpd
        self._thread = thread
        self._process = process
        self._connection = connection
        self._stopped = False

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def in_process(self) -> bool:
        """True when the server runs in a separate process."""
        return self._process is not None

    def stats(self) -> dict[str, Any]:
        """The ``GET /_stats`` document."""
        if self._httpd is not None:
            return self._httpd.stats.snapshot()
        request = urllib.request.Request(self.url + "/_stats", headers=self._authorization())
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset_stats(self) -> None:
        """Zero the counters (``POST /_stats/reset``)."""
        if self._httpd is not None:
            self._httpd.stats.reset()
            return
        request = urllib.request.Request(
            self.url + "/_stats/reset", data=b"", method="POST", headers=self._authorization()
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def _authorization(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token is not None else {}

    def stop(self) -> None:
        """Stop serving, close open connections and free the port (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
        if self._process is not None:
            try:
                self._connection.send("stop")
            except (OSError, EOFError):
                pass
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5)
            self._connection.close()

    def wait(self) -> None:
        """Block until the server stops (used by the CLI)."""
        if self._thread is not None:
            self._thread.join()
        elif self._process is not None:
            self._process.join()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        mode = "process" if self.in_process else "thread"
        return f"<eexarray Server {self.url} ({mode}{', stopped' if self._stopped else ''})>"


def _start_thread(config: ServeConfig) -> Server:
    httpd = config.build()
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.1},
        daemon=True,
        name=f"eexarray-server-{httpd.server_address[1]}",
    )
    thread.start()
    return Server(httpd.url, httpd=httpd, thread=thread)


def _process_main(config: ServeConfig, connection: Any) -> None:
    """Entry point of the server process: report the URL (or the failure), serve until told to stop."""
    try:
        server = _start_thread(config)
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
        return
    connection.send(("url", server.url))
    try:
        connection.recv()
    except (EOFError, OSError):
        pass  # the parent went away: stop as well
    server.stop()


def _start_process(config: ServeConfig) -> Server:
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_process_main, args=(config, child_end), daemon=True, name="eexarray-server")
    process.start()
    child_end.close()
    if not parent_end.poll(_PROCESS_START_TIMEOUT):
        process.terminate()
        raise RuntimeError(f"The server process did not start within {_PROCESS_START_TIMEOUT:g} s")
    try:
        kind, value = parent_end.recv()
    except EOFError:
        process.join(timeout=5)
        raise RuntimeError(f"The server process exited during start-up (exit code {process.exitcode})") from None
    if kind == "error":
        process.join(timeout=5)
        raise RuntimeError(f"The server process failed to start: {value}")
    return Server(value, process=process, connection=parent_end, token=config.options.token)


def serve(
    root: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    catalog: CatalogEntries | None = None,
    process: bool = False,
    latency_ms: float = 0.0,
    latency_ms_per_mb: float = 0.0,
    faults: str | Mapping[str, float] | FaultPlan | None = None,
    seed: int | None = None,
    token: str | None = None,
    max_concurrency: int | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    compute_budget: int | None = None,
) -> Server:
    """Start a local Earth Engine-compatible server and return its handle.

    ``root``: a directory of GeoTIFFs (see docs/server.md); ``catalog``: in-memory or
    procedural images and collections, alone or merged with ``root`` (the catalog wins
    on a name clash). With neither, the built-in demo catalog is served. ``port=0``
    picks a free port. The knobs are documented in :mod:`eexarray.server.options`.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a host name or address, got {host!r}")
    options = ServerOptions(
        latency_ms=latency_ms,
        latency_ms_per_mb=latency_ms_per_mb,
        faults=FaultPlan.parse(faults, seed),
        token=token,
        max_concurrency=max_concurrency,
        max_body_bytes=max_body_bytes,
        compute_budget=compute_budget,
    )
    root_path = os.fspath(root) if root is not None else None
    if root_path is not None and not os.path.isdir(root_path):
        raise ValueError(f"root {root_path!r} is not a directory")
    entries = tuple(catalog) if catalog is not None else None
    if entries is not None:
        Catalog.build(None, entries)  # fail here, in the caller, on a bad catalog
    config = ServeConfig(root_path, entries, host, port, options)
    return _start_process(config) if process else _start_thread(config)
