"""Threads and sessions are shared per endpoint: credentials objects that come and go leave
nothing behind (no threads, no sessions, no reference to themselves)."""

from __future__ import annotations

import gc
import threading
import weakref

import google.oauth2.credentials
import numpy as np

import eexarray
from eexarray.transport import ConnectionConfig
from eexarray.transport.session import MAX_SESSIONS, MAX_STATES, _sessions, _states, endpoint_state

CAP = 4


def test_200_opens_with_fresh_credentials_leave_a_bounded_number_of_threads(server):
    """Each open (with its own credentials object) reads one chunk through the fetch pool;
    before, every credentials object got its own session and thread pool (~3 threads each)."""
    # Warm up: the dask pool, the watchdog, one fetch pool.
    eexarray.open_dataset("rel/small", endpoint=server.url, max_concurrency=CAP).u[:4, :4].values  # noqa: B018
    before = threading.active_count()
    references = []
    expected = np.asarray(eexarray.open_dataset("rel/small", endpoint=server.url).u[:4, :4].values)
    for index in range(200):
        credentials = google.oauth2.credentials.Credentials(f"token-{index}")
        references.append(weakref.ref(credentials))
        ds = eexarray.open_dataset("rel/small", endpoint=server.url, credentials=credentials, max_concurrency=CAP)
        np.testing.assert_array_equal(ds.u[:4, :4].values, expected)
        del ds, credentials
    grown = threading.active_count() - before
    assert grown <= CAP + 4, f"{grown} more threads after 200 opens"
    fetch_threads = [t for t in threading.enumerate() if t.name.startswith("eexarray-fetch")]
    assert all(t.daemon for t in fetch_threads)
    gc.collect()
    alive = sum(reference() is not None for reference in references)
    assert alive == 0, f"{alive} credentials objects still referenced by the transport"


def test_states_are_per_endpoint_project_and_cap_not_per_credentials(server):
    a = ConnectionConfig.create(server.url, credentials=google.oauth2.credentials.Credentials("a"))
    b = ConnectionConfig.create(server.url, credentials=google.oauth2.credentials.Credentials("b"))
    assert endpoint_state(a) is endpoint_state(b)  # one in-flight cap for one project's quota
    assert endpoint_state(a).config.credentials is None  # and it keeps no credentials
    assert endpoint_state(a).session is endpoint_state(b).session
    other_project = ConnectionConfig.create(server.url, project="other")
    assert endpoint_state(other_project) is not endpoint_state(a)
    assert endpoint_state(other_project).session is endpoint_state(a).session  # one pool of connections


def test_many_endpoints_keep_a_bounded_number_of_sessions_and_states():
    for port in range(1, MAX_STATES + 40):
        endpoint_state(ConnectionConfig.create(f"http://127.0.0.1:{port}")).session  # noqa: B018
    assert len(_sessions) <= MAX_SESSIONS
    assert len(_states) <= MAX_STATES


def test_a_larger_cap_gets_a_larger_connection_pool(server):
    small = endpoint_state(ConnectionConfig.create(server.url, max_concurrency=2)).session
    large = endpoint_state(ConnectionConfig.create(server.url, max_concurrency=90)).session
    assert small is large
    assert large.get_adapter(server.url)._pool_maxsize >= 90
