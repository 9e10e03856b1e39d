"""``Image.parseExpression``: what ``ee.Image.expression`` calls.

The official client sends ``Image.parseExpression(expression, argName, vars)`` and
invokes the algorithm it returns with one image per name in ``vars`` (``argName`` is
the image ``expression`` was called on). The returned function parses the text once
and builds the result from the server's own image algorithms (``Image.add``...), so
types, band matching and masks follow them exactly.

Grammar (Earth Engine's, JavaScript-like): numbers; ``b(0)``, ``b('B4')``, ``b(0, 'B3')``
(bands of the default image); ``name`` (all bands of an image variable), ``name.band``,
``name[0]``, ``name['band']``; ``+ - * / % **``; ``== != < <= > >=``; ``&& || !``;
``cond ? a : b``; unary ``-``/``+``; parentheses; the functions ``abs``, ``min``, ``max``,
``sqrt``, ``exp``, ``log``, ``log10``, ``floor``, ``ceil``, ``round``, ``pow``; and an
optional leading ``name =`` naming the single result band. With
``mapFreeVarsToDefaultImageBands`` a name that is not a variable is a band of the
default image.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eexarray.server.compute import values as v
from eexarray.server.compute.algorithms_image import select_positions
from eexarray.server.compute.registry import Call, algorithm, opt
from eexarray.server.errors import invalid_argument

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")|(?P<op>\*\*|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:()\[\].,=]))"
)
_BINARY = {  # operator: (precedence, algorithm)
    "||": (1, "Image.or"), "&&": (2, "Image.and"),
    "==": (3, "Image.eq"), "!=": (3, "Image.neq"),
    "<": (4, "Image.lt"), "<=": (4, "Image.lte"), ">": (4, "Image.gt"), ">=": (4, "Image.gte"),
    "+": (5, "Image.add"), "-": (5, "Image.subtract"),
    "*": (6, "Image.multiply"), "/": (6, "Image.divide"), "%": (6, "Image.mod"),
    "**": (8, "Image.pow"),
}  # fmt: skip
_UNARY_FUNCTIONS = {
    "abs": "Image.abs", "sqrt": "Image.sqrt", "exp": "Image.exp", "log": "Image.log", "log10": "Image.log10",
    "floor": "Image.floor", "ceil": "Image.ceil", "round": "Image.round",
}  # fmt: skip
_BINARY_FUNCTIONS = {"min": "Image.min", "max": "Image.max", "pow": "Image.pow"}
_UNARY_ARGUMENT = {"Image.abs": "value", "Image.not": "value"}  # the rest take "input" or "value" (below)


@dataclass(frozen=True)
class Token:
    kind: str  # number, name, string, op, end
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            where = len(text) - len(text[position:].lstrip())
            raise invalid_argument(
                f"Image.parseExpression: unexpected character {text[where]!r} at {where} in {text!r}"
            )
        kind = match.lastgroup or "op"
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    """A precedence-climbing parser that evaluates as it parses (the inputs are known)."""

    def __init__(self, text: str, evaluator: Any, images: Mapping[str, v.Image], default: str, free_bands: bool):
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.evaluator = evaluator
        self.images = images
        self.default = default
        self.free_bands = free_bands

    # -- tokens --
    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self, text: str | None = None) -> Token:
        token = self.tokens[self.index]
        if text is not None and token.text != text:
            self.fail(f"expected {text!r}", token)
        self.index += 1
        return token

    def fail(self, problem: str, token: Token | None = None) -> Exception:
        token = token or self.peek()
        found = repr(token.text) if token.kind != "end" else "the end"
        raise invalid_argument(f"Image.parseExpression: {problem} at {token.position} (found {found}) in {self.text!r}")

    # -- grammar --
    def parse(self) -> v.Image:
        name = None
        if self.peek().kind == "name" and self.tokens[self.index + 1].text == "=":
            name = self.take().text
            self.take("=")
        result = self.conditional()
        if self.peek().kind != "end":
            self.fail("unexpected text")
        image = self.as_image(result)
        if name is not None:
            if len(image.bands) != 1:
                raise invalid_argument(
                    f"Image.parseExpression: '{name} = ...' names one band, the result has {image.band_names}."
                )
            image = image.with_bands([image.bands[0].renamed(name)])
        return image

    def conditional(self) -> Any:
        test = self.binary(1)
        if self.peek().text != "?":
            return test
        self.take("?")
        then = self.conditional()
        self.take(":")
        otherwise = self.conditional()
        return self.invoke("Image.where", input=self.as_image(otherwise), test=test, value=then)

    def binary(self, minimum: int) -> Any:
        left = self.unary()
        while self.peek().text in _BINARY and _BINARY[self.peek().text][0] >= minimum:
            operator = self.take().text
            precedence, name = _BINARY[operator]
            right = self.binary(precedence if operator == "**" else precedence + 1)  # ** is right-associative
            left = self.invoke(name, image1=left, image2=right)
        return left

    def unary(self) -> Any:
        token = self.peek()
        if token.text == "-":
            self.take()
            operand = self.unary()
            if isinstance(operand, (int, float)):
                return -operand
            return self.invoke("Image.multiply", image1=operand, image2=-1)
        if token.text == "+":
            self.take()
            return self.unary()
        if token.text == "!":
            self.take()
            return self.invoke("Image.not", value=self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Any:
        token = self.take()
        if token.kind == "number":
            number = float(token.text)
            return int(number) if number.is_integer() and re.fullmatch(r"\d+", token.text) else number
        if token.text == "(":
            value = self.conditional()
            self.take(")")
            return value
        if token.kind != "name":
            self.fail("expected a number, a name or '('", token)
        if self.peek().text == "(":
            return self.function(token)
        if token.text in self.images:
            return self.images[token.text]
        if self.free_bands:
            return self.bands(self.images[self.default], [token.text], token)
        self.fail(f"unknown variable (variables: {sorted(n for n in self.images if n != self.default)})", token)
        raise AssertionError

    def postfix(self, value: Any) -> Any:
        while self.peek().text in (".", "["):
            if not isinstance(value, v.Image):
                self.fail("only images have bands")
            if self.take().text == ".":
                value = self.bands(value, [self.take().text], self.tokens[self.index - 1])
            else:
                selector = self.literal()
                self.take("]")
                value = self.bands(value, [selector], self.tokens[self.index - 1])
        return value

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return token.text[1:-1]
        if token.kind == "number" and re.fullmatch(r"\d+", token.text):
            return int(token.text)
        self.fail("expected a band name in quotes or a band index", token)

    def function(self, token: Token) -> Any:
        self.take("(")
        if token.text == "b":
            selectors = [self.literal()]
            while self.peek().text == ",":
                self.take(",")
                selectors.append(self.literal())
            self.take(")")
            return self.bands(self.images[self.default], selectors, token)
        arguments = [self.conditional()]
        while self.peek().text == ",":
            self.take(",")
            arguments.append(self.conditional())
        self.take(")")
        if token.text in _UNARY_FUNCTIONS and len(arguments) == 1:
            name = _UNARY_FUNCTIONS[token.text]
            return self.invoke(name, **{_UNARY_ARGUMENT.get(name, "value"): arguments[0]})
        if token.text in _BINARY_FUNCTIONS and len(arguments) == 2:
            return self.invoke(_BINARY_FUNCTIONS[token.text], image1=arguments[0], image2=arguments[1])
        known = [f"{n}(x)" for n in _UNARY_FUNCTIONS] + [f"{n}(x, y)" for n in _BINARY_FUNCTIONS] + ["b(...)"]
        self.fail(f"unknown function {token.text}() with {len(arguments)} argument(s); known: {known}", token)

    # -- values --
    def bands(self, image: v.Image, selectors: list[Any], token: Token) -> v.Image:
        positions = select_positions(_SelectCall(self.text), image, selectors, "band")
        return image.with_bands([image.bands[i] for i in positions])

    def as_image(self, value: Any) -> v.Image:
        if isinstance(value, v.Image):
            return value
        return self.invoke("Image.constant", value=value)

    def invoke(self, name: str, **arguments: Any) -> Any:
        return self.evaluator.invoke(name, arguments)


class _SelectCall:
    """Stands in for a Call in ``select_positions`` so band errors name the expression."""

    def __init__(self, text: str):
        self.text = text

    def error(self, message: str) -> Exception:
        return invalid_argument(f"Image.parseExpression ({self.text!r}): {message}")


def expression_function(
    text: str, default: str, names: list[str], free_bands: bool
) -> Callable[[Any, Mapping[str, Any]], Any]:
    def run(evaluator: Any, arguments: Mapping[str, Any]) -> v.Image:
        images = {}
        for name in names:
            value = arguments[name]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = evaluator.invoke("Image.constant", {"value": value})
            if not isinstance(value, v.Image):
                raise invalid_argument(f"Image.parseExpression: variable '{name}' must be an Image, "
                                       f"got {v.type_name(value)}.")  # fmt: skip
            images[name] = value
        return _Parser(text, evaluator, images, default, free_bands).parse()

    return run


@algorithm("Image.parseExpression", "Algorithm",
           "Parses an arithmetic expression over images into an algorithm taking the images named in vars.",
           ("expression", "String"), ("argName", "String"), ("vars", "List<String>"),
           opt("mapFreeVarsToDefaultImageBands", "Boolean", "", False))  # fmt: skip
def _parse_expression(call: Call) -> v.NativeFunction:
    text, default, names = call.string("expression"), call.string("argName"), call.string_list("vars")
    if default not in names:
        raise call.error(f"argName '{default}' must be one of vars {names}.")
    tokenize(text)  # syntax errors surface here, before any image is given
    return v.NativeFunction(
        tuple(names), expression_function(text, default, names, call.boolean("mapFreeVarsToDefaultImageBands"))
    )
