"""Deadlines: ``request_timeout`` bounds each attempt (connect + whole response), retries are
bounded in count and in time, cancellation and Ctrl-C stop reads on the wire."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import eexarray
from eexarray.transport import (
    ConnectionConfig,
    RequestCancelledError,
    RequestTimeoutError,
    RestClient,
    RetriesExhaustedError,
    RetryPolicy,
)
from eexarray.transport.api import get_pixels
from eexarray.transport.pool import FetchPool

from .conftest import SMALL_GRID, catalog
from .hanging import HangingServer, PixelsHangProxy, wait_for

ROOT = Path(__file__).resolve().parents[2]
QUICK = RetryPolicy(max_attempts=8, initial_delay=0.01, max_delay=0.05)


def client_for(url: str, request_timeout: float, retry: RetryPolicy = QUICK) -> RestClient:
    return RestClient(ConnectionConfig.create(url, request_timeout=request_timeout), retry)


@pytest.mark.parametrize("mode", ["silent", "drip_headers", "drip_body", "drip_unsized"])
def test_a_stuck_server_fails_after_request_timeout_per_attempt(mode):
    """Silent, or sending a byte every 0.25 s (so no socket read ever times out): each attempt
    ends at its deadline, and two timed-out attempts end the call (not eight)."""
    with HangingServer(mode, interval=0.25) as server:
        client = client_for(server.url, request_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            client.get_json("projects/p/assets/x", what="get asset x")
        elapsed = time.monotonic() - started
        assert server.requests == QUICK.timeout_attempts == 2
    assert 2.0 <= elapsed < 2.0 + 1.5, elapsed  # 2 attempts x 1 s (+ a backoff and slack)
    error = caught.value
    assert isinstance(error, RetriesExhaustedError) and isinstance(error, TimeoutError)
    assert error.attempts == 2 and error.last_status is None
    assert "no complete response within 1 s (request_timeout)" in str(error)
    assert "the limit of 2 timed-out attempts" in str(error)


def test_a_busy_machine_between_attempts_does_not_cut_the_last_attempt_short(monkeypatch):
    """The default call bound has room for every timed-out attempt the count allows, whole:
    0.4 s of local work between attempts (a loaded CI machine) must not shorten the second
    attempt and turn "2 timed-out attempts" into "the call's limit" (a CI failure once)."""
    from eexarray.transport import deadline

    real_wait = deadline.wait_unless_cancelled

    def busy_wait(seconds: float) -> bool:
        time.sleep(0.4)  # the thread is scheduled late: time passes outside any attempt
        return real_wait(seconds)

    monkeypatch.setattr(deadline, "wait_unless_cancelled", busy_wait)
    with HangingServer("silent") as server:
        client = client_for(server.url, request_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            client.get_json("projects/p/assets/x", what="get asset x")
        elapsed = time.monotonic() - started
        assert server.requests == 2
    assert 2.4 <= elapsed < 2.4 + 1.0, elapsed  # both attempts whole: 2 x 1 s + 0.4 s
    assert "the limit of 2 timed-out attempts" in str(caught.value), str(caught.value)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, trusted by requests through REQUESTS_CA_BUNDLE."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test certificate"
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, str(cert)


@pytest.mark.parametrize("mode", ["silent", "drip_body"])
def test_the_deadline_also_ends_https_attempts(tls, mode, monkeypatch):
    """Over TLS the reader blocks inside the SSL layer: shutting the socket down still wakes it."""
    context, cert = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    with HangingServer("slow_ok", interval=0.01, tls=context) as healthy:
        assert client_for(healthy.url, request_timeout=5.0).get_json("x") == {"ok": True}  # TLS itself works
    with HangingServer(mode, interval=0.25, tls=context) as server:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError, match="within 1 s"):
            client_for(server.url, request_timeout=1.0).get_json("x")
        assert server.requests == 2
    assert time.monotonic() - started < 2.0 + 1.5


def test_a_shorter_socket_timeout_counts_as_a_timed_out_attempt():
    """RetryPolicy.timeout (no progress for that long) ends an attempt before request_timeout."""
    retry = RetryPolicy(initial_delay=0.01, max_delay=0.01, timeout=0.3)
    with HangingServer("silent") as server:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError, match=r"no progress for 0.3 s"):
            client_for(server.url, request_timeout=30.0, retry=retry).get_json("x")
        assert time.monotonic() - started < 0.3 * 2 + 1.0
        assert server.requests == 2


def test_a_body_cut_by_the_deadline_is_never_returned_even_when_it_parses():
    """``{"ok": true}`` followed by dripped spaces is valid JSON wherever the deadline cuts it:
    it is still a timeout, not a result."""
    with HangingServer("drip_unsized", interval=0.1) as server:
        with pytest.raises(RequestTimeoutError):
            client_for(server.url, request_timeout=0.6).get_json("x")


def test_a_slow_complete_response_within_the_deadline_succeeds():
    with HangingServer("slow_ok", interval=0.05) as server:  # 12 bytes over ~0.6 s
        assert client_for(server.url, request_timeout=3.0).get_json("x") == {"ok": True}
        assert server.requests == 1


def test_retries_respect_the_calls_overall_bound():
    """A server that fails slowly (503 after 0.4 s) is retried only while the call's total
    bound allows: total_timeout=1.5 s gives 3-4 attempts, not 8."""
    retry = RetryPolicy(max_attempts=8, initial_delay=0.01, max_delay=0.02, total_timeout=1.5)
    with HangingServer("slow_503", interval=0.4) as server:
        started = time.monotonic()
        with pytest.raises(RetriesExhaustedError) as caught:
            client_for(server.url, request_timeout=5.0, retry=retry).get_json("x")
        elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 0.5, elapsed
    assert 3 <= caught.value.attempts <= 4 and caught.value.last_status == 503
    assert "the call's limit of 1.5 s" in str(caught.value)
    assert not isinstance(caught.value, RequestTimeoutError)  # the server did answer


def test_the_default_bounds_are_the_documented_ones():
    policy = RetryPolicy()
    config = ConnectionConfig.create("http://127.0.0.1:9")
    assert config.request_timeout == 300.0  # 48 MiB at ~1.3 Mbit/s
    assert 48 * 2**20 / config.request_timeout == pytest.approx(167772, rel=1e-3)  # bytes/s
    assert policy.timeout_attempts == 2 and policy.max_attempts == 8
    # A silent server costs 2 x 300 s; no call lasts longer than 621 s, retries included:
    # both attempts whole, the wait between them, 1 s of local work.
    assert policy.call_deadline(config.request_timeout) == 621.0
    assert RetryPolicy(timeout_attempts=3).call_deadline(10) == 3 * 10 + 2 * 20 + 1
    assert RetryPolicy(total_timeout=60).call_deadline(300) == 60


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), "30", True])
def test_a_bad_request_timeout_is_refused_before_any_request(value):
    with HangingServer("silent") as server:
        with pytest.raises(ValueError, match="request_timeout must be a positive, finite number of seconds"):
            eexarray.open_dataset("rel/small", endpoint=server.url, request_timeout=value)
        assert server.connections == 0


def test_request_timeout_reaches_the_compute_and_the_pickled_graph(fast_retry):
    """The option is a ConnectionConfig field: the pixel requests of a compute (in the fetch
    pool) honour it, and it travels in pickles (dask workers)."""
    with eexarray.serve(catalog=catalog()) as upstream, PixelsHangProxy(upstream.url) as proxy:
        ds = eexarray.open_dataset("rel/small", endpoint=proxy.url, request_timeout=0.5, chunks={"y": 64, "x": 128})
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError, match=r"within 0.5 s \(request_timeout\)"):
            ds.u.isel(y=slice(0, 64), x=slice(0, 128)).values  # noqa: B018 - one chunk
        assert time.monotonic() - started < 0.5 * 2 + 1.5
        assert proxy.posts >= 2
    restored = pickle.loads(pickle.dumps(ConnectionConfig.create(proxy.url, request_timeout=7.5)))
    assert restored.request_timeout == 7.5


def test_cancelling_a_running_fetch_stops_its_read_at_once():
    """PendingRead.cancel() cancels its futures: a fetch already on the wire is aborted too."""
    pool = FetchPool(2, name="test-fetch")
    with HangingServer("silent") as server:
        client = client_for(server.url, request_timeout=60.0)
        future = pool.submit(client.get_json, "x")
        assert wait_for(lambda: server.requests == 1)
        started = time.monotonic()
        assert future.cancel() is False  # running: not cancellable the Future way, but stopped
        error = future.exception(timeout=5)
        assert time.monotonic() - started < 1.0
        assert server.requests == 1  # and never retried
    assert isinstance(error, RequestCancelledError)


def test_cancelling_a_fetch_waiting_to_retry_stops_it():
    with HangingServer("slow_503", interval=0.01) as server:
        retry = RetryPolicy(max_attempts=8, initial_delay=5.0, max_delay=5.0)  # waits Retry-After: 5 s
        pool = FetchPool(1, name="test-fetch")
        future = pool.submit(client_for(server.url, 60.0, retry).get_json, "x")
        assert wait_for(lambda: server.requests == 1)
        time.sleep(0.1)  # now in the backoff wait
        future.cancel()
        assert isinstance(future.exception(timeout=2), RequestCancelledError)
        assert server.requests == 1


def test_abort_in_flight_stops_every_request_on_the_wire_and_later_ones_still_work():
    pool = FetchPool(4, name="test-abort")
    with HangingServer("silent") as silent, HangingServer("slow_ok", interval=0.01) as healthy:
        futures = [pool.submit(client_for(silent.url, 60.0).get_json, "x") for _ in range(3)]
        assert wait_for(lambda: silent.requests == 3)
        started = time.monotonic()
        assert eexarray.transport.abort_in_flight() >= 3
        for future in futures:
            assert isinstance(future.exception(timeout=5), RequestCancelledError)
        assert time.monotonic() - started < 1.0
        assert client_for(healthy.url, 5.0).get_json("x") == {"ok": True}


def test_fetch_threads_are_daemons_and_leave_when_idle():
    pool = FetchPool(3, name="test-idle", idle_seconds=0.2)
    futures = [pool.submit(time.sleep, 0.1) for _ in range(6)]
    for future in futures:
        future.result(timeout=5)
    workers = [t for t in threading.enumerate() if t.name.startswith("test-idle")]
    assert 1 <= len(workers) <= 3 and all(t.daemon for t in workers)
    assert wait_for(lambda: pool.thread_count == 0, timeout=3)
    assert not [t for t in threading.enumerate() if t.name.startswith("test-idle")]
    assert pool.submit(lambda: 42).result(timeout=5) == 42  # and it starts again on demand


SIGINT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import eexarray
    ds = eexarray.open_dataset("rel/small", endpoint=sys.argv[1], chunks={"y": 64, "x": 128})
    print("computing", flush=True)
    ds.compute()  # every pixel request hangs: the default request_timeout is 300 s
    print("computed", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_during_a_hung_compute_lets_the_process_exit_within_seconds(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(SIGINT_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with eexarray.serve(catalog=catalog()) as upstream, PixelsHangProxy(upstream.url) as proxy:
        child = subprocess.Popen(
            [sys.executable, str(script), proxy.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"computing"
            assert wait_for(lambda: proxy.posts >= 2, timeout=30)  # requests on the wire, hanging
            time.sleep(0.5)
            child.send_signal(signal.SIGINT)
            started = time.monotonic()
            try:
                _, stderr = child.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail("the process did not exit within 10 s of SIGINT (threads stuck in reads)")
            exit_seconds = time.monotonic() - started
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode != 0
    assert b"KeyboardInterrupt" in stderr
    assert exit_seconds < 5, exit_seconds


def test_a_read_that_hangs_fails_only_its_own_pixels_request(fast_retry):
    """The deadline is per request: a hung getPixels fails with the request named."""
    with HangingServer("silent") as server:
        client = client_for(server.url, request_timeout=0.3, retry=RetryPolicy(initial_delay=0.01, max_delay=0.01))
        with pytest.raises(RequestTimeoutError) as caught:
            get_pixels(client, "projects/p/assets/x", SMALL_GRID, ["u"], [np.dtype("uint16")])
    assert "getPixels of projects/p/assets/x" in caught.value.request
