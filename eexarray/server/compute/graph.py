"""Decoding an Earth Engine expression (the JSON DAG of computePixels / value:compute).

``{"result": "0", "values": {"0": ValueNode, ...}}`` where a ValueNode has exactly one
of ``constantValue``, ``integerValue``, ``bytesValue``, ``arrayValue {values}``,
``dictionaryValue {values}``, ``functionInvocationValue {functionName | functionReference,
arguments}``, ``functionDefinitionValue {argumentNames, body}``, ``argumentReference``,
``valueReference``. Decoding resolves references into a tree of shared node objects
(a node referenced twice is one object, so the evaluator can compute it once), checks
the shape, rejects cycles, dangling references and arguments used outside their
function, and bounds the nesting depth. Every problem is a 400 naming where it is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eexarray.server.errors import invalid_argument

MAX_DEPTH = 200  # nested nodes; keeps evaluation far from Python's recursion limit
NODE_KINDS = (
    "constantValue",
    "integerValue",
    "bytesValue",
    "arrayValue",
    "dictionaryValue",
    "functionInvocationValue",
    "functionDefinitionValue",
    "argumentReference",
    "valueReference",
)


@dataclass(frozen=True, eq=False)
class Node:
    """A decoded value node; ``free`` names the function arguments it depends on."""

    free: frozenset[str] = field(default=frozenset(), kw_only=True)


@dataclass(frozen=True, eq=False)
class Constant(Node):
    value: Any


@dataclass(frozen=True, eq=False)
class ArrayNode(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class DictNode(Node):
    items: dict[str, Node]


@dataclass(frozen=True, eq=False)
class Invocation(Node):
    """A call of the algorithm ``name``, or of the function that ``function`` evaluates to."""

    name: str | None
    function: Node | None
    arguments: dict[str, Node]


@dataclass(frozen=True, eq=False)
class FunctionDef(Node):
    argument_names: tuple[str, ...]
    body: Node


@dataclass(frozen=True, eq=False)
class ArgumentRef(Node):
    name: str


def malformed(where: str, problem: str) -> Exception:
    return invalid_argument(f"Invalid expression at {where}: {problem}")


def decode_expression(expression: Any) -> Node:
    """The root node of ``expression``; 400 naming the first problem found."""
    if not isinstance(expression, Mapping):
        raise invalid_argument(
            f'expression must be an object {{"result": key, "values": {{key: ValueNode}}}}, got {_kind(expression)}'
        )
    unknown = sorted(set(expression) - {"result", "values"})
    if unknown:
        raise malformed("expression", f'unknown field "{unknown[0]}"; an expression has "result" and "values"')
    result, values = expression.get("result"), expression.get("values")
    if not isinstance(values, Mapping) or not values:
        raise malformed("expression.values", f"must be a non-empty object of ValueNodes, got {_kind(values)}")
    if not isinstance(result, str):
        raise malformed("expression.result", f"must be the string key of a value, got {_kind(result)}")
    root = _Decoder(values).reference(result, "expression.result", 0)
    if root.free:
        name = sorted(root.free)[0]
        raise malformed("expression", f'argumentReference "{name}" is not an argument of an enclosing function')
    return root


class _Decoder:
    def __init__(self, values: Mapping[str, Any]):
        self.values = values
        self.done: dict[str, Node] = {}
        self.active: set[str] = set()

    def reference(self, key: Any, where: str, depth: int) -> Node:
        if not isinstance(key, str):
            raise malformed(where, f"a valueReference must be a string key, got {_kind(key)}")
        if key in self.done:
            return self.done[key]
        if key not in self.values:
            raise malformed(where, f'valueReference "{key}" names no entry of expression.values')
        if key in self.active:
            raise malformed(where, f'valueReference "{key}" refers back to itself (a cycle)')
        self.active.add(key)
        node = self.node(self.values[key], f'values["{key}"]', depth)
        self.active.discard(key)
        self.done[key] = node
        return node

    def node(self, value: Any, where: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise malformed(where, f"the expression is nested more than {MAX_DEPTH} levels deep")
        if not isinstance(value, Mapping):
            raise malformed(where, f"a ValueNode must be an object with one of {list(NODE_KINDS)}, got {_kind(value)}")
        kinds = [key for key in value if key in NODE_KINDS]
        unknown = [key for key in value if key not in NODE_KINDS]
        if unknown:
            raise malformed(where, f'unknown field "{unknown[0]}"; a ValueNode has one of {list(NODE_KINDS)}')
        if len(kinds) != 1:
            raise malformed(where, f"a ValueNode needs exactly one of {list(NODE_KINDS)}, got {kinds}")
        kind = kinds[0]
        content = value[kind]
        at = f"{where}.{kind}"
        if kind == "constantValue":
            return Constant(content)
        if kind == "integerValue":
            return Constant(_integer(content, at))
        if kind == "bytesValue":
            return Constant(_bytes(content, at))
        if kind == "valueReference":
            return self.reference(content, at, depth + 1)
        if kind == "argumentReference":
            if not isinstance(content, str) or not content:
                raise malformed(at, f"must be a non-empty argument name, got {_kind(content)}")
            return ArgumentRef(content, free=frozenset([content]))
        if kind == "arrayValue":
            items = tuple(
                self.node(item, f"{at}.values[{index}]", depth + 1)
                for index, item in enumerate(_field(content, "values", list, at))
            )
            return ArrayNode(items, free=_union(items))
        if kind == "dictionaryValue":
            entries = _field(content, "values", Mapping, at)
            members = {str(key): self.node(item, f'{at}.values["{key}"]', depth + 1) for key, item in entries.items()}
            return DictNode(members, free=_union(members.values()))
        if kind == "functionDefinitionValue":
            return self.definition(content, at, depth)
        return self.invocation(content, at, depth)

    def invocation(self, content: Any, at: str, depth: int) -> Node:
        if not isinstance(content, Mapping):
            raise malformed(at, f"must be an object with functionName and arguments, got {_kind(content)}")
        unknown = sorted(set(content) - {"functionName", "functionReference", "arguments"})
        if unknown:
            raise malformed(at, f'unknown field "{unknown[0]}"')
        name, reference = content.get("functionName"), content.get("functionReference")
        if (name is None) == (reference is None):
            raise malformed(at, "needs exactly one of functionName and functionReference")
        if name is not None and (not isinstance(name, str) or not name):
            raise malformed(f"{at}.functionName", f"must be an algorithm name, got {_kind(name)}")
        function = self.reference(reference, f"{at}.functionReference", depth + 1) if reference is not None else None
        raw_arguments = content.get("arguments", {})
        if not isinstance(raw_arguments, Mapping):
            raise malformed(f"{at}.arguments", f"must be an object of ValueNodes, got {_kind(raw_arguments)}")
        arguments = {
            str(key): self.node(item, f'{at}.arguments["{key}"]', depth + 1) for key, item in raw_arguments.items()
        }
        parts = list(arguments.values()) + ([function] if function is not None else [])
        return Invocation(name, function, arguments, free=_union(parts))

    def definition(self, content: Any, at: str, depth: int) -> Node:
        if not isinstance(content, Mapping):
            raise malformed(at, f"must be an object with argumentNames and body, got {_kind(content)}")
        unknown = sorted(set(content) - {"argumentNames", "body"})
        if unknown:
            raise malformed(at, f'unknown field "{unknown[0]}"')
        names = content.get("argumentNames", [])
        if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
            raise malformed(f"{at}.argumentNames", f"must be a list of argument names, got {_kind(names)}")
        if len(set(names)) != len(names):
            raise malformed(f"{at}.argumentNames", f"names an argument twice: {names}")
        body = self.reference(content.get("body"), f"{at}.body", depth + 1)
        return FunctionDef(tuple(names), body, free=body.free - set(names))


def _field(content: Any, name: str, kind: type, at: str) -> Any:
    if not isinstance(content, Mapping) or set(content) - {name}:
        raise malformed(at, f'must be an object {{"{name}": ...}}, got {_kind(content)}')
    value = content.get(name, [] if kind is list else {})
    if not isinstance(value, kind):
        raise malformed(f"{at}.{name}", f"must be a {'list' if kind is list else 'object'}, got {_kind(value)}")
    return value


def _integer(content: Any, at: str) -> int:
    try:
        if isinstance(content, bool) or not isinstance(content, (str, int)):
            raise ValueError
        return int(content)
    except ValueError:
        raise malformed(at, f"must be an integer (as a decimal string), got {content!r}") from None


def _bytes(content: Any, at: str) -> bytes:
    try:
        if not isinstance(content, str):
            raise ValueError
        return base64.b64decode(content.encode("ascii"), validate=True)
    except (ValueError, binascii.Error):
        raise malformed(at, f"must be base64 text, got {str(content)[:60]!r}") from None


def _union(nodes: Any) -> frozenset[str]:
    free: frozenset[str] = frozenset()
    for node in nodes:
        free |= node.free
    return free


def _kind(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}" if value is not None else "nothing"
