"""The algorithm table: names, arguments and implementations, and their REST listing.

Names, argument names and types follow Earth Engine's official catalog, so the
official client (which builds ``ee.Image``, ``ee.ImageCollection``... methods from
``GET /v1/projects/*/algorithms``) produces exactly the calls implemented here.
Each implementation receives a ``Call``: the evaluated arguments with defaults
applied, plus typed accessors whose errors name the algorithm and argument.

The REST listing is Earth Engine's whole catalog (``eexarray/server/data/ee_algorithms.json``,
provenance in ``data/SOURCES.md``), not only what is registered here: the official client
builds its methods from the listing, so with the whole catalog every method exists, and
an algorithm this server has not built fails at evaluation with a 400 naming it instead
of an ``AttributeError`` inside the client.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from eexarray.server.compute import values as v
from eexarray.server.compute.bands import ConstantSource
from eexarray.server.compute.pixeltype import PixelType
from eexarray.server.errors import invalid_argument

if TYPE_CHECKING:
    from eexarray.server.compute.evaluator import Evaluator

_REQUIRED = object()


@dataclass(frozen=True)
class Arg:
    name: str
    type: str
    description: str = ""
    default: Any = _REQUIRED  # _REQUIRED: the argument must be given; otherwise optional with this default

    @property
    def optional(self) -> bool:
        return self.default is not _REQUIRED

    def to_json(self) -> dict[str, Any]:
        described: dict[str, Any] = {"argumentName": self.name, "type": self.type, "description": self.description}
        if self.optional:
            described["optional"] = True
            if self.default is not None:
                described["defaultValue"] = self.default
        return described


def opt(name: str, type_: str, description: str = "", default: Any = None) -> Arg:
    return Arg(name, type_, description, default)


@dataclass(frozen=True)
class Algorithm:
    name: str
    returns: str
    description: str
    arguments: tuple[Arg, ...]
    implementation: Callable[[Call], Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": f"algorithms/{self.name}",
            "description": self.description,
            "returnType": self.returns,
            "arguments": [argument.to_json() for argument in self.arguments],
        }


ALGORITHMS: dict[str, Algorithm] = {}


def algorithm(
    name: str, returns: str, description: str, *arguments: Arg | tuple[str, str] | tuple[str, str, str]
) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
    """Register the decorated ``implementation(call)`` as algorithm ``name``."""
    args = tuple(a if isinstance(a, Arg) else Arg(*a) for a in arguments)

    def register(implementation: Callable[[Call], Any]) -> Callable[[Call], Any]:
        if name in ALGORITHMS:
            raise ValueError(f"Algorithm {name} is registered twice")
        ALGORITHMS[name] = Algorithm(name, returns, description, args, implementation)
        return implementation

    return register


@functools.lru_cache(maxsize=1)
def earth_engine_catalog() -> dict[str, dict[str, Any]]:
    """Earth Engine's algorithm catalog (REST ``Algorithm`` entries) by name (``Image.add``)."""
    text = (
        resources.files("eexarray.server").joinpath("data").joinpath("ee_algorithms.json").read_text(encoding="utf-8")
    )
    return {entry["name"].removeprefix("algorithms/"): entry for entry in json.loads(text)["algorithms"]}


def algorithm_list() -> dict[str, Any]:
    """The body of ``GET /v1/projects/*/algorithms``: the whole catalog, plus anything registered beyond it."""
    catalog = earth_engine_catalog()
    entries = {**catalog, **{name: ALGORITHMS[name].to_json() for name in ALGORITHMS if name not in catalog}}
    return {"algorithms": [entries[name] for name in sorted(entries)]}


def not_implemented(name: str) -> Exception:
    """The 400 for an algorithm that is in Earth Engine's catalog (or unknown) but not built here."""
    if name in earth_engine_catalog():
        return invalid_argument(
            f'"{name}" is not implemented by the local Earth Engine server (docs/server.md lists what is).'
        )
    return invalid_argument(f'Unknown algorithm "{name}": it is not in Earth Engine\'s algorithm catalog.')


@dataclass(frozen=True)
class Call:
    """One invocation: evaluated arguments (defaults applied) and typed access to them."""

    algorithm: Algorithm
    args: dict[str, Any]
    evaluator: Evaluator

    def error(self, message: str) -> Exception:
        return invalid_argument(f"{self.algorithm.name}: {message}")

    def _type_error(self, name: str, expected: str, value: Any) -> Exception:
        return self.error(
            f"Invalid type for argument '{name}'. Expected type: {expected}. Actual type: {v.type_name(value)}."
        )

    def get(self, name: str) -> Any:
        return self.args.get(name)

    def image(self, name: str) -> v.Image:
        value = self.args.get(name)
        if isinstance(value, v.Image):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # numbers promote to constant images
            return constant_image(value)
        raise self._type_error(name, "Image", value)

    def collection(self, name: str) -> v.Collection:
        value = self.args.get(name)
        if isinstance(value, v.Collection):
            return value
        raise self._type_error(name, "ImageCollection", value)

    def any_collection(self, name: str) -> v.Collection | v.FeatureCollection:
        """An ImageCollection or a FeatureCollection (for the generic Collection.* algorithms)."""
        value = self.args.get(name)
        if isinstance(value, (v.Collection, v.FeatureCollection)):
            return value
        raise self._type_error(name, "FeatureCollection", value)

    def string(self, name: str) -> str:
        value = self.args.get(name)
        if isinstance(value, str):
            return value
        raise self._type_error(name, "String", value)

    def optional_string(self, name: str) -> str | None:
        return None if self.args.get(name) is None else self.string(name)

    def integer(self, name: str) -> int:
        value = self.args.get(name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self._type_error(name, "Integer", value)

    def optional_integer(self, name: str) -> int | None:
        return None if self.args.get(name) is None else self.integer(name)

    def number(self, name: str) -> int | float:
        value = self.args.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise self._type_error(name, "Number", value)

    def finite(self, name: str) -> float:
        """A finite number argument (NaN or infinity is a 400 naming the argument)."""
        value = self.number(name)
        if not math.isfinite(value):
            raise self.error(f"Argument '{name}' must be a finite number, got {value!r}.")
        return float(value)

    def boolean(self, name: str) -> bool:
        value = self.args.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return bool(value)
        raise self._type_error(name, "Boolean", value)

    def sequence(self, name: str) -> list[Any]:
        value = self.args.get(name)
        if isinstance(value, (list, tuple)):
            return list(value)
        raise self._type_error(name, "List", value)

    def string_list(self, name: str) -> list[str]:
        items = self.sequence(name)
        if not all(isinstance(item, str) for item in items):
            raise self._type_error(name, "List<String>", items)
        return items

    def optional_string_list(self, name: str) -> list[str] | None:
        return None if self.args.get(name) is None else self.string_list(name)

    def dictionary(self, name: str) -> dict[str, Any]:
        value = self.args.get(name)
        if isinstance(value, dict):
            return value
        raise self._type_error(name, "Dictionary", value)

    def of(self, name: str, kind: type, expected: str) -> Any:
        value = self.args.get(name)
        if isinstance(value, kind):
            return value
        raise self._type_error(name, expected, value)

    def function(self, name: str, arity: int) -> v.Function:
        value = self.of(name, v.Function, "Algorithm")
        if len(value.argument_names) != arity:
            raise self.error(
                f"argument '{name}' must be a function of {arity} argument(s), "
                f"got one of {len(value.argument_names)}: {list(value.argument_names)}"
            )
        return value

    def apply(self, function: v.Function, arguments: Sequence[Any]) -> Any:
        return self.evaluator.apply(function, arguments)


def constant_image(value: int | float, name: str = "constant") -> v.Image:
    """A one-band constant image; integers beyond 64 bits become doubles, non-finite values a 400."""
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid_argument(f"A constant image needs a finite number, got {value!r}.")
    pixel_type = PixelType.of_constant(value)
    return v.Image((v.Band(name, pixel_type, ConstantSource(value, pixel_type.dtype), None),))
