"""AIP-160 ``filter`` evaluation for ``listAssets`` / ``listImages`` over image assets.

``parse_filter(text)`` turns a filter string into a predicate over the EarthEngineAsset
JSON of an image (``type id name startTime endTime updateTime properties geometry``).
Malformed filters raise :class:`FilterError` naming the position, the offending text and
what was expected there.

Grammar (AIP-160, https://google.aip.dev/160, restricted to what image listings need)::

    filter      := [expression]                      empty or blank: every asset matches
    expression  := sequence {"AND" sequence}
    sequence    := factor {factor}                   whitespace-separated factors: AND
    factor      := term {"OR" term}
    term        := ["NOT" | "-"] term | simple
    simple      := "(" expression ")" | restriction
    restriction := FIELD COMPARATOR VALUE
                 | "intersects" "(" [ "geometry" "," ] GEOMETRY ")"
    COMPARATOR  := "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
    FIELD       := startTime | endTime | updateTime | id | name | type
                 | properties.NAME                   NAME: letters, digits, "_" and "."
                 | NAME                              a bare name is properties.NAME (GDAL's EEDA driver)
                 | properties                        only with ":" (has key), e.g. properties:CLOUD
    VALUE       := "double-quoted" | 'single-quoted' (backslash escapes \\" \\' \\\\ \\n \\t \\r \\/ \\uXXXX)
                 | bare text (no whitespace, parentheses, quotes, commas; may not start with = < > ! :)

As AIP-160 specifies (and unlike most programming languages) **OR binds tighter than
AND**: ``a AND b OR c`` means ``a AND (b OR c)``. Keywords are case-sensitive (``AND``,
``OR``, ``NOT``); ``-`` directly before a term negates it.

Semantics:

* ``startTime``/``endTime``/``updateTime`` compare as instants (nanosecond precision).
  The value must be an RFC 3339 timestamp, with or without fractional seconds (up to 9
  digits), with ``Z`` or an offset, or without a zone (read as UTC); a bare date
  ``2020-01-01`` means midnight UTC. Anything else is a :class:`FilterError`.
* ``id``/``name``/``type`` compare as strings with the value's text.
* ``properties.NAME``: the stored property's JSON type decides the comparison. A number
  compares numerically with a value that reads as a number (``5``, ``"5"``, ``-1.5e3``);
  a string compares as a string with the value's text (so ``properties.SPACECRAFT = S2A``
  works unquoted); a boolean supports ``=``/``!=``/``:`` with ``true``/``false``. A missing
  or null property, or a value that cannot be read as the property's type, makes the
  comparison **false** (also for ``!=``; use ``NOT properties.X = v`` to include missing).
* ``:`` is equality, except ``FIELD:*`` (field present and not null) and
  ``properties:NAME`` (the asset has that property). ``*`` is otherwise a literal character.
* ``intersects(GEOMETRY)`` is true when the asset's ``geometry`` footprint intersects the
  given geometry (touching counts). GEOMETRY is a string holding GeoJSON (a geometry or
  a Feature), the same with single quotes instead of double quotes (what the official
  client sends: it replaces ``"`` by ``'`` to embed the JSON in the filter), or WKT
  (POINT, MULTIPOINT, LINESTRING, MULTILINESTRING, POLYGON, MULTIPOLYGON). The test is
  exact but **planar in longitude/latitude degrees**: edges are straight lines in degrees,
  not geodesics, and nothing wraps at the antimeridian. An asset without a geometry
  never intersects. No optional dependency (shapely) is used, so results never depend on
  the environment.

Any other name is a property: ``CLOUDY_PIXEL_PERCENTAGE < 20`` means
``properties.CLOUDY_PIXEL_PERCENTAGE < 20``. GDAL's EEDA driver writes filters that way
(its autotest ``autotest/ogr/ogr_eeda.py`` expects ``(string_field = "bar" AND int_field > 0)
AND (NOT (int_field = 0 OR double_field = 3.5))``). A property named like a field in
any letter case (``id``, ``Name``, ``starttime``...) needs the ``properties.`` prefix.

The official client (earthengine-api 1.7) builds filters such as::

    startTime >= "2019-01-01T00:00:00Z" AND endTime < "2020-01-01" AND
    intersects("{'type':'Polygon','coordinates':[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}") AND
    properties.CLOUDY_PIXEL_PERCENTAGE<20 AND properties.classification=urban
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from eexarray.server.geojson import GeometryError, Shapes, intersects, parse_geometry, parse_geometry_text

__all__ = ["FilterError", "parse_filter"]

Predicate = Callable[[Mapping[str, Any]], bool]
Point = tuple[float, float]

TIME_FIELDS = ("startTime", "endTime", "updateTime")
STRING_FIELDS = ("id", "name", "type")
_VALID_FIELDS = "startTime, endTime, updateTime, id, name, type, properties.<NAME> and a bare property <NAME>"
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    ":": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EQUALITY_OPERATORS = ("=", ":", "!=")


class FilterError(ValueError):
    """A malformed filter; ``position`` is the 0-based offset of the offending text."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


def parse_filter(text: str) -> Predicate:
    """Parse an AIP-160 filter into a predicate over image asset JSON (see module doc)."""
    if not isinstance(text, str):
        raise FilterError(f"filter must be a string, got {type(text).__name__}")
    return _Parser(text).parse()


# --------------------------------------------------------------------------- values

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_INTEGER = re.compile(r"[+-]?\d+\Z")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?)?\Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _as_number(text: str) -> int | float | None:
    if _INTEGER.match(text):
        return int(text)
    if _NUMBER.match(text):
        return float(text)
    return None


def timestamp_ns(text: str) -> int | None:
    """Nanoseconds since the Unix epoch of an RFC 3339 timestamp or bare date, else None."""
    match = _TIMESTAMP.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=timezone.utc
        )
    except ValueError:
        return None
    offset_minutes = 0
    if zone and zone not in "Zz":
        digits = zone[1:].replace(":", "")
        offset_minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
        offset_minutes = -offset_minutes if zone[0] == "-" else offset_minutes
    whole = (moment - _EPOCH) // timedelta(seconds=1) - offset_minutes * 60
    return whole * 10**9 + int((fraction or "").ljust(9, "0"))


def _asset_label(asset: Mapping[str, Any]) -> str:
    return str(asset.get("id") or asset.get("name") or "<unnamed asset>")


# --------------------------------------------------------------------------- predicates


def _accept_all(asset: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class _All:
    children: tuple[Predicate, ...]

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        return all(child(asset) for child in self.children)


@dataclass(frozen=True)
class _Any:
    children: tuple[Predicate, ...]

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        return any(child(asset) for child in self.children)


@dataclass(frozen=True)
class _Not:
    child: Predicate

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        return not self.child(asset)


@dataclass(frozen=True)
class _TimeComparison:
    field: str
    op: str
    instant_ns: int

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        stored = asset.get(self.field)
        if stored is None:
            return False
        stored_ns = timestamp_ns(stored) if isinstance(stored, str) else None
        if stored_ns is None:
            raise ValueError(f"asset {_asset_label(asset)}: {self.field} {stored!r} is not an RFC 3339 timestamp")
        return _OPERATORS[self.op](stored_ns, self.instant_ns)


@dataclass(frozen=True)
class _StringComparison:
    field: str
    op: str
    text: str

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        stored = asset.get(self.field)
        return isinstance(stored, str) and _OPERATORS[self.op](stored, self.text)


@dataclass(frozen=True)
class _PropertyComparison:
    name: str
    op: str
    text: str  # the value as written (quotes removed, escapes resolved)

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        stored = (asset.get("properties") or {}).get(self.name)
        compare = _OPERATORS[self.op]
        if isinstance(stored, bool):  # before numbers: bool is an int subclass
            wanted = {"true": True, "false": False}.get(self.text)
            return wanted is not None and self.op in _EQUALITY_OPERATORS and compare(stored, wanted)
        if isinstance(stored, (int, float)):
            number = _as_number(self.text)
            return number is not None and compare(stored, number)
        if isinstance(stored, str):
            return compare(stored, self.text)
        return False  # missing, null, list or object


@dataclass(frozen=True)
class _Present:
    field: str
    property_name: str | None = None

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        if self.property_name is not None:
            return (asset.get("properties") or {}).get(self.property_name) is not None
        return asset.get(self.field) is not None


@dataclass(frozen=True)
class _HasProperty:
    name: str

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        return self.name in (asset.get("properties") or {})


@dataclass(frozen=True)
class _Intersects:
    region: Shapes

    def __call__(self, asset: Mapping[str, Any]) -> bool:
        footprint = asset.get("geometry")
        if footprint is None:
            return False
        try:
            shape = parse_geometry(footprint)
        except GeometryError as error:
            raise ValueError(f"asset {_asset_label(asset)}: bad geometry: {error}") from None
        return intersects(self.region, shape)


# --------------------------------------------------------------------------- parser

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_KEYWORD = re.compile(r"(AND|OR|NOT)(?![A-Za-z0-9_.])")
_COMPARATOR = re.compile(r"<=|>=|!=|=|<|>|:")
_BARE_VALUE = re.compile(r"[^\s()\"',=<>!:][^\s()\"',]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/"}


@dataclass(frozen=True)
class _Value:
    text: str
    quoted: bool
    position: int


class _Parser:
    """Recursive descent over the raw text; values are read in context, so bare
    timestamps (``2020-01-01T00:00:00Z``) and negative numbers need no quoting."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- helpers
    def error(self, message: str, position: int | None = None) -> FilterError:
        where = self.pos if position is None else position
        return FilterError(f"invalid filter at position {where}: {message}", where)

    def found(self) -> str:
        """The text at the cursor, for error messages."""
        self.skip_ws()
        if self.pos >= len(self.text):
            return "end of filter"
        # skip_ws stopped on a non-space character, so the first word is never empty.
        chunk = self.text[self.pos : self.pos + 40].split(maxsplit=1)[0]
        return repr(chunk)

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def keyword_ahead(self, *keywords: str) -> str | None:
        self.skip_ws()
        match = _KEYWORD.match(self.text, self.pos)
        return match.group(1) if match and match.group(1) in keywords else None

    def take_keyword(self, keyword: str) -> None:
        self.pos += len(keyword)

    # -- grammar
    def parse(self) -> Predicate:
        self.skip_ws()
        if self.pos == len(self.text):
            return _accept_all
        result = self.expression()
        self.skip_ws()
        if self.pos < len(self.text):
            raise self.error(f"unexpected {self.found()}; expected AND, OR, another restriction or end of filter")
        return result

    def expression(self) -> Predicate:
        parts = [self.sequence()]
        while self.keyword_ahead("AND"):
            self.take_keyword("AND")
            parts.append(self.sequence())
        return parts[0] if len(parts) == 1 else _All(tuple(parts))

    def sequence(self) -> Predicate:
        parts = [self.factor()]
        while self.factor_starts_here():
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else _All(tuple(parts))

    def factor_starts_here(self) -> bool:
        self.skip_ws()
        if self.pos >= len(self.text) or self.text[self.pos] in "),":
            return False
        return self.keyword_ahead("AND", "OR") is None

    def factor(self) -> Predicate:
        parts = [self.term()]
        while self.keyword_ahead("OR"):
            self.take_keyword("OR")
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else _Any(tuple(parts))

    def term(self) -> Predicate:
        if self.keyword_ahead("NOT"):
            self.take_keyword("NOT")
            return _Not(self.term())
        if self.text.startswith("-", self.pos):
            self.pos += 1
            return _Not(self.term())
        return self.simple()

    def simple(self) -> Predicate:
        self.skip_ws()
        if self.text.startswith("(", self.pos):
            opened = self.pos
            self.pos += 1
            inner = self.expression()
            self.skip_ws()
            if not self.text.startswith(")", self.pos):
                raise self.error(f"expected ')' to close the '(' at position {opened}, found {self.found()}")
            self.pos += 1
            return inner
        return self.restriction()

    def restriction(self) -> Predicate:
        start = self.pos
        word = _WORD.match(self.text, self.pos)
        if not word or _KEYWORD.match(word.group(0)):
            raise self.error(
                f"expected a restriction (FIELD OPERATOR VALUE or intersects(...)) or '(', found {self.found()}"
            )
        name = word.group(0)
        self.pos = word.end()
        self.skip_ws()
        if self.text.startswith("(", self.pos):
            if name != "intersects":
                raise self.error(f"unknown function {name!r}; the only function is intersects(...)", start)
            return self.intersects()
        field = self.check_field(name, start)
        comparator = _COMPARATOR.match(self.text, self.pos)
        if not comparator:
            raise self.error(
                f"expected a comparison operator (=, !=, <, <=, >, >=, :) after {name!r}, found {self.found()}"
            )
        op = comparator.group(0)
        self.pos = comparator.end()
        value = self.value(f"after {name!r} {op}")
        return self.comparison(field, op, value)

    def check_field(self, name: str, position: int) -> str:
        """The field a restriction names; a bare name (what GDAL's EEDA driver writes) is a property."""
        if name in TIME_FIELDS or name in STRING_FIELDS or name == "properties":
            return name
        if name.startswith("properties.") and len(name) > len("properties.") and not name.endswith("."):
            return name
        if name.upper() in ("AND", "OR", "NOT"):
            raise self.error(
                f"unknown field {name!r} (the logical operators AND, OR and NOT are uppercase); "
                f"valid fields are {_VALID_FIELDS}",
                position,
            )
        for valid in TIME_FIELDS + STRING_FIELDS:
            if name.lower() == valid.lower():  # most likely a typo; a property so named needs the prefix
                raise self.error(
                    f"unknown field {name!r} (did you mean {valid!r}? a property so named is "
                    f"properties.{name}); valid fields are {_VALID_FIELDS}",
                    position,
                )
        if name.startswith("properties") or name.endswith("."):
            raise self.error(f"unknown field {name!r}; valid fields are {_VALID_FIELDS}", position)
        return f"properties.{name}"

    def comparison(self, name: str, op: str, value: _Value) -> Predicate:
        presence = op == ":" and value.text == "*" and not value.quoted
        if name == "properties":
            if op != ":":
                raise self.error(
                    f"'properties' only supports ':' (has key), e.g. properties:CLOUD; "
                    f"compare a property with properties.NAME {op} VALUE",
                    value.position,
                )
            return _HasProperty(value.text)
        if name.startswith("properties."):
            property_name = name[len("properties.") :]
            return _Present(name, property_name) if presence else _PropertyComparison(property_name, op, value.text)
        if presence:
            return _Present(name)
        if name in TIME_FIELDS:
            instant = timestamp_ns(value.text)
            if instant is None:
                raise self.error(
                    f'{name} needs an RFC 3339 timestamp such as "2020-01-01T00:00:00Z" or a date '
                    f'such as "2020-01-01", found {value.text!r}',
                    value.position,
                )
            return _TimeComparison(name, op, instant)
        return _StringComparison(name, op, value.text)

    def value(self, context: str) -> _Value:
        self.skip_ws()
        start = self.pos
        if self.text.startswith(('"', "'"), self.pos):
            return _Value(self.quoted_string(), True, start)
        bare = _BARE_VALUE.match(self.text, self.pos)
        if not bare:
            next_char = self.text[self.pos : self.pos + 1]
            hint = " (comparison operators are =, !=, <, <=, >, >=, :)" if next_char and next_char in "=<>!:" else ""
            raise self.error(
                f'expected a value (a "quoted string", a number, true/false or bare text) {context}, '
                f"found {self.found()}{hint}"
            )
        self.pos = bare.end()
        return _Value(bare.group(0), False, start)

    def quoted_string(self) -> str:
        start, quote = self.pos, self.text[self.pos]
        chars: list[str] = []
        i = start + 1
        while i < len(self.text):
            char = self.text[i]
            if char == quote:
                self.pos = i + 1
                return "".join(chars)
            if char == "\\":
                escape = self.text[i + 1 : i + 2]
                if escape in _ESCAPES:
                    chars.append(_ESCAPES[escape])
                    i += 2
                    continue
                hex_digits = self.text[i + 2 : i + 6]
                if escape == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", hex_digits):
                    chars.append(chr(int(hex_digits, 16)))
                    i += 6
                    continue
                raise self.error(
                    f"invalid escape {self.text[i : i + 2]!r} in string; valid escapes are "
                    "\\\" \\' \\\\ \\/ \\n \\t \\r \\uXXXX",
                    i,
                )
            chars.append(char)
            i += 1
        snippet = self.text[start : start + 40]
        raise self.error(f"unterminated string starting with {snippet!r}; add the closing {quote}", start)

    def intersects(self) -> Predicate:
        opened = self.pos
        self.pos += 1  # the "("
        arguments = [self.value("in intersects(...)")]
        self.skip_ws()
        while self.text.startswith(",", self.pos):
            self.pos += 1
            arguments.append(self.value("in intersects(...)"))
            self.skip_ws()
        if not self.text.startswith(")", self.pos):
            raise self.error(f"expected ',' or ')' to close intersects( at position {opened}, found {self.found()}")
        self.pos += 1
        if len(arguments) == 2 and not arguments[0].quoted and arguments[0].text == "geometry":
            arguments = arguments[1:]
        if len(arguments) != 1:
            raise self.error(
                'intersects takes one geometry string: intersects("<GeoJSON or WKT>") or '
                'intersects(geometry, "<GeoJSON or WKT>")',
                opened,
            )
        argument = arguments[0]
        try:
            return _Intersects(parse_geometry_text(argument.text))
        except ValueError as error:
            snippet = argument.text if len(argument.text) <= 60 else argument.text[:57] + "..."
            raise self.error(
                f"intersects() needs a GeoJSON geometry or WKT string; cannot read {snippet!r}: {error}",
                argument.position,
            ) from None
