"""Evaluating a decoded expression against the server's catalog.

Nodes that use no function argument are computed once per request (the DAG's
shared nodes are one object, see ``graph``); nodes inside a function body that use
its arguments are recomputed for every call (``Collection.map``, ``iterate``...).
Arguments are checked against the algorithm's signature: an unknown algorithm, an
unknown argument or a missing required one is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eexarray.server.catalog import Catalog
from eexarray.server.compute import graph
from eexarray.server.compute import values as v
from eexarray.server.compute.registry import ALGORITHMS, Call, not_implemented
from eexarray.server.errors import invalid_argument

MAX_CALLS = 1_000_000  # function calls per request: a runaway map/iterate is a 400, not a hung thread


class Evaluator:
    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._memo: dict[int, Any] = {}
        self._keep: list[graph.Node] = []  # memo keys are ids: keep their nodes alive
        self._calls = 0

    def evaluate(self, node: graph.Node, environment: Mapping[str, Any] | None = None) -> Any:
        environment = environment or {}
        if not node.free:
            key = id(node)
            if key in self._memo:
                return self._memo[key]
            value = self._compute(node, {})
            self._memo[key] = value
            self._keep.append(node)
            return value
        return self._compute(node, environment)

    def _compute(self, node: graph.Node, environment: Mapping[str, Any]) -> Any:
        if isinstance(node, graph.Constant):
            return node.value
        if isinstance(node, graph.ArrayNode):
            return [self.evaluate(item, environment) for item in node.items]
        if isinstance(node, graph.DictNode):
            return {key: self.evaluate(item, environment) for key, item in node.items.items()}
        if isinstance(node, graph.ArgumentRef):
            return environment[node.name]  # graph.decode_expression checked that it is bound
        if isinstance(node, graph.FunctionDef):
            captured = {name: environment[name] for name in node.free}
            return v.Function(node.argument_names, node.body, captured)
        assert isinstance(node, graph.Invocation)
        arguments = {name: self.evaluate(item, environment) for name, item in node.arguments.items()}
        if node.function is not None:
            function = self.evaluate(node.function, environment)
            if not isinstance(function, (v.Function, v.NativeFunction)):
                raise invalid_argument(
                    f"functionReference must name a functionDefinitionValue, got {v.type_name(function)}"
                )
            return self.call_with_names(function, arguments)
        assert node.name is not None
        return self.invoke(node.name, arguments)

    def invoke(self, name: str, arguments: dict[str, Any]) -> Any:
        definition = ALGORITHMS.get(name)
        if definition is None:
            raise not_implemented(name)
        known = {argument.name for argument in definition.arguments}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise invalid_argument(
                f"{name}: unknown argument '{unknown[0]}'. Valid arguments: {[a.name for a in definition.arguments]}"
            )
        complete = {}
        for argument in definition.arguments:
            if argument.name in arguments:
                complete[argument.name] = arguments[argument.name]
            elif argument.optional:
                complete[argument.name] = argument.default
            else:
                raise invalid_argument(f"{name}: required argument '{argument.name}' ({argument.type}) is missing.")
        return definition.implementation(Call(definition, complete, self))

    def apply(self, function: v.Function | v.NativeFunction, arguments: Sequence[Any]) -> Any:
        """Call ``function`` with positional ``arguments``."""
        if len(arguments) != len(function.argument_names):
            raise invalid_argument(
                f"A function of {len(function.argument_names)} argument(s) {list(function.argument_names)} "
                f"was called with {len(arguments)}."
            )
        return self.call_with_names(function, dict(zip(function.argument_names, arguments)))

    def call_with_names(self, function: v.Function | v.NativeFunction, arguments: Mapping[str, Any]) -> Any:
        missing = [name for name in function.argument_names if name not in arguments]
        extra = sorted(set(arguments) - set(function.argument_names))
        if missing or extra:
            raise invalid_argument(
                f"A function of arguments {list(function.argument_names)} was called with {sorted(arguments)}."
            )
        self._calls += 1
        if self._calls > MAX_CALLS:
            raise invalid_argument(f"The expression makes more than {MAX_CALLS} function calls.")
        if isinstance(function, v.NativeFunction):
            return function.implementation(self, arguments)
        return self.evaluate(function.body, {**function.environment, **arguments})
