"""Entry points of the evaluator: an expression to a value, and ``value:compute``."""

from __future__ import annotations

from typing import Any

from eexarray.server.catalog import Catalog

# Importing the algorithm modules registers their algorithms.
from eexarray.server.compute import (  # noqa: F401
    algorithms_collection,
    algorithms_expression,
    algorithms_filter,
    algorithms_image,
    algorithms_math,
    algorithms_reduce,
    algorithms_spatial,
    algorithms_values,
    algorithms_visualize,
)
from eexarray.server.compute.evaluator import Evaluator
from eexarray.server.compute.graph import decode_expression
from eexarray.server.compute.info import to_json
from eexarray.server.errors import invalid_argument

VALUE_BODY_KEYS = ("expression", "workloadTag")


def evaluate(catalog: Catalog, expression: Any) -> Any:
    """The value of an expression graph over ``catalog`` (lazy for pixels); 400 on any bad input."""
    root = decode_expression(expression)
    try:
        return Evaluator(catalog).evaluate(root)
    except RecursionError:
        raise invalid_argument("The expression is nested too deeply to evaluate.") from None


def compute_value(catalog: Catalog, body: Any) -> dict[str, Any]:
    """The ``value:compute`` response ``{"result": <JSON>}``."""
    if not isinstance(body, dict):
        raise invalid_argument(f"The request body must be a JSON object with keys {VALUE_BODY_KEYS}")
    for key in body:
        if key not in VALUE_BODY_KEYS:
            raise invalid_argument(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
    if body.get("expression") is None:
        raise invalid_argument("value:compute needs an expression.")
    computed = evaluate(catalog, body["expression"])
    try:
        return {"result": to_json(computed)}
    except RecursionError:
        raise invalid_argument("The result is nested too deeply to return as JSON.") from None
