"""RFC 3339 timestamps as the REST API writes and reads them."""

from __future__ import annotations

import datetime as dt

from eexarray.server.errors import invalid_argument


def format_time(value: dt.datetime) -> str:
    """``2020-01-01T00:00:00Z``, with fractional seconds only when there are some."""
    value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    # isoformat, not strftime("%Y"): that writes year 999 as "999", which is not RFC 3339.
    text = value.isoformat(timespec="seconds")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str, what: str) -> dt.datetime:
    """An aware UTC datetime from RFC 3339 text; 400 naming ``what`` when malformed."""
    if not isinstance(text, str) or not text.strip():
        raise invalid_argument(f"{what} must be an RFC 3339 timestamp such as 2020-01-01T00:00:00Z, got {text!r}")
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise invalid_argument(
            f"{what} must be an RFC 3339 timestamp such as 2020-01-01T00:00:00Z (years 0001-9999, four digits), "
            f"got {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise invalid_argument(f"{what} {text!r} is before 0001-01-01T00:00:00Z in UTC") from None
