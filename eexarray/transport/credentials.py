"""Which Google credentials a request carries, and every header they apply.

Order (the same as the official ``earthengine-api`` client's ``ee.Initialize()``, with an
explicit object first):

1. ``credentials=`` (any google-auth credentials object);
2. Earth Engine's own stored credentials, ``~/.config/earthengine/credentials``, written
   by ``earthengine authenticate`` / ``ee.Authenticate()``: a JSON object with
   ``refresh_token`` and optionally ``client_id``, ``client_secret``, ``scopes`` and
   ``project`` (the quota project);
3. Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
   ``gcloud auth application-default login``, a metadata server).

The quota project is the credentials' ``quota_project_id`` (for stored Earth Engine
credentials their ``project``, else the ADC file's ``quota_project_id``, as the official
client does); an explicit ``project=`` wins. ``credentials.apply()`` sets
``Authorization`` and ``x-goog-user-project`` (and whatever else the credentials need):
all of them are sent.

Loaded credentials are kept per process (a dask worker loads its own); nothing here is
ever pickled, logged or put in a message.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eexarray.transport.config import SCOPES, ConnectionConfig
from eexarray.transport.errors import CredentialsError

EE_CREDENTIALS_PATH = "~/.config/earthengine/credentials"
# The defaults ``earthengine-api`` (ee/oauth.py, version 1.7.50) fills in for a stored file
# that lacks them: its public OAuth client (an "installed application" client, public by
# design) and Google's token endpoint. Files written by ``ee.Authenticate()`` in
# notebook/localhost mode often hold only ``refresh_token`` and ``scopes``.
EE_CLIENT_ID = "517222506229-vsmmajv00ul0bs7p89v5m89qs8eb9359.apps.googleusercontent.com"
EE_CLIENT_SECRET = "RUP0RZ6e0pPhDzsqIJ7KlNd1"
EE_TOKEN_URI = "https://oauth2.googleapis.com/token"
EE_DEFAULT_SCOPES = (
    "https://www.googleapis.com/auth/earthengine",
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/devstorage.full_control",
)
FIX_HINT = (
    "Run `earthengine authenticate` (or ee.Authenticate() in Python), or "
    "`gcloud auth application-default login`, or point GOOGLE_APPLICATION_CREDENTIALS at a "
    "service-account or authorized-user JSON file, or pass credentials=."
)


@dataclass(frozen=True)
class Loaded:
    """Credentials found by the default search, and where (for messages; never the secret)."""

    credentials: Any
    source: str


def ee_credentials_path() -> Path:
    return Path(os.path.expanduser(EE_CREDENTIALS_PATH))


def load_ee_credentials(path: Path) -> Any:
    """google-auth credentials from Earth Engine's stored file (the format ``ee.Authenticate`` writes).

    Raises ``CredentialsError`` naming the file when it exists but cannot be used.
    """
    import google.oauth2.credentials

    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CredentialsError(
            f"Earth Engine's stored credentials {str(path)!r} cannot be read ({type(error).__name__}); "
            "run `earthengine authenticate` again"
        ) from None
    if not isinstance(stored, dict) or not isinstance(stored.get("refresh_token"), str) or not stored["refresh_token"]:
        raise CredentialsError(
            f"Earth Engine's stored credentials {str(path)!r} hold no refresh_token; "
            "run `earthengine authenticate` again"
        )
    scopes = stored.get("scopes") or list(EE_DEFAULT_SCOPES)
    return google.oauth2.credentials.Credentials(
        None,
        refresh_token=stored["refresh_token"],
        token_uri=EE_TOKEN_URI,  # not overridable from the file, as in the official client
        client_id=stored.get("client_id") or EE_CLIENT_ID,
        client_secret=stored.get("client_secret") or EE_CLIENT_SECRET,
        scopes=list(scopes),
        quota_project_id=stored.get("project") or _adc_quota_project(),
    )


def _adc_quota_project() -> str | None:
    """The ``quota_project_id`` of gcloud's ADC file (what ``set-quota-project`` writes), if any."""
    try:
        from google.auth import _cloud_sdk

        with open(_cloud_sdk.get_application_default_credentials_path()) as file:
            value = json.load(file).get("quota_project_id")
    except (OSError, ValueError, ImportError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def find_default_credentials(endpoint: str) -> Loaded:
    """Earth Engine's stored credentials if present, else Application Default Credentials.

    ``endpoint`` only names what they are for in the error when none are found.
    """
    tried = ["credentials= (not given)"]
    path = ee_credentials_path()
    if path.is_file():
        return Loaded(load_ee_credentials(path), f"Earth Engine's stored credentials {str(path)!r}")
    tried.append(f"Earth Engine's stored credentials {str(path)!r} (no such file)")
    import google.auth
    import google.auth.exceptions

    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except google.auth.exceptions.DefaultCredentialsError as error:
        variable = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        where = f"GOOGLE_APPLICATION_CREDENTIALS={variable!r}" if variable else "Application Default Credentials"
        tried.append(f"{where} ({_first_line(error)})")
        raise CredentialsError(
            f"No Google credentials found for {endpoint}. Tried: " + "; ".join(tried) + ". " + FIX_HINT
        ) from None
    source = "Application Default Credentials"
    if not getattr(credentials, "quota_project_id", None):
        project = _adc_quota_project()
        if project and hasattr(credentials, "with_quota_project"):
            credentials = credentials.with_quota_project(project)
    return Loaded(credentials, source)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


_default: Loaded | None = None
_default_pid = os.getpid()
_default_lock = threading.Lock()
_refresh_lock = threading.Lock()


def default_credentials(endpoint: str) -> Loaded:
    """This process's default credentials (searched once; again after a fork)."""
    global _default, _default_pid
    with _default_lock:
        if _default_pid != os.getpid():
            _default, _default_pid = None, os.getpid()
        if _default is None:
            _default = find_default_credentials(endpoint)
        return _default


def forget_default_credentials() -> None:
    """Search again on next use (after ``earthengine authenticate`` in a running session; tests)."""
    global _default
    with _default_lock:
        _default = None


def credentials_for(config: ConnectionConfig) -> Loaded | None:
    """The credentials requests with ``config`` carry (None: no credentials, local server)."""
    if config.credentials_source == "none":
        return None
    if config.credentials_source == "object" and config.credentials is not None:
        return Loaded(config.credentials, f"credentials= ({type(config.credentials).__name__})")
    return default_credentials(config.endpoint)


def quota_project(config: ConnectionConfig) -> str | None:
    """``project=`` (or ``EEXARRAY_PROJECT``), else the credentials' quota project, else None."""
    if config.project:
        return config.project
    loaded = credentials_for(config)
    value = getattr(loaded.credentials, "quota_project_id", None) if loaded else None
    return value if isinstance(value, str) and value else None


def compute_project(config: ConnectionConfig) -> str:
    """The ``projects/<id>`` of compute calls (``value:compute``, ``image:computePixels``).

    The quota project when one is known; else ``earthengine-legacy`` (what the official
    client used before Cloud projects, still accepted for accounts registered then).
    """
    return f"projects/{quota_project(config) or 'earthengine-legacy'}"


def apply_credentials(config: ConnectionConfig, headers: MutableMapping[str, str], *, force_refresh: bool) -> None:
    """Set every header the credentials apply (refreshing the token when needed), then ``project=``'s."""
    if config.credentials_source == "none":
        token = os.environ.get("EEXARRAY_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
    else:
        loaded = credentials_for(config)
        assert loaded is not None  # every source but "none" has credentials (or raised)
        credentials = loaded.credentials
        if force_refresh or not getattr(credentials, "valid", False):
            _refresh(credentials, loaded.source, config.endpoint, force=force_refresh)
        applied: dict[str, str] = {}
        credentials.apply(applied)
        headers.update(applied)
    if config.project:
        # An explicit project wins over the credentials' own quota project (the header name is
        # case-insensitive: the requests headers mapping keeps one of them).
        headers["x-goog-user-project"] = config.project


def _refresh(credentials: Any, source: str, endpoint: str, *, force: bool) -> None:
    import google.auth.exceptions
    import google.auth.transport.requests

    # One refresh at a time: concurrent requests would each fetch a token otherwise.
    with _refresh_lock:
        if not force and getattr(credentials, "valid", False):
            return  # another thread refreshed it meanwhile
        try:
            credentials.refresh(google.auth.transport.requests.Request(_token_session()))
        except google.auth.exceptions.RefreshError as error:
            raise CredentialsError(
                f"Cannot refresh the Google credentials from {source} for {endpoint}: {_first_line(error)}. {FIX_HINT}"
            ) from None
        except google.auth.exceptions.TransportError as error:
            raise CredentialsError(
                f"Cannot reach Google's token service to refresh the credentials from {source}: {type(error).__name__}"
            ) from None


_session: Any = None
_session_pid = 0


def _token_session() -> Any:
    """One session for token refreshes (google-auth's ``Request()`` makes a new one each time);
    a new one after a fork (pooled sockets must not be shared with the parent)."""
    global _session, _session_pid
    import requests

    if _session is None or _session_pid != os.getpid():
        _session, _session_pid = requests.Session(), os.getpid()
    return _session
