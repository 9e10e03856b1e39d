"""Knobs for testing clients: latency, injected faults, a bearer token, a concurrency cap,
a compute budget.

Faults are written ``429=0.2,503=0.1,reset=0.05,truncate=0.02[,seed=7]``: each API
request is answered, with that probability, by the HTTP status (any 4xx/5xx code),
a dropped connection (``reset``) or a body cut short (``truncate``). The fractions
may add up to at most 1; ``seed`` makes the sequence of draws reproducible.

``compute_budget=N`` reproduces Earth Engine's refusal of heavy computations: a
``computePixels`` whose output pixels x images (the ``Image.load`` calls of its
expression, at least 1) exceed N is answered 400 "User memory limit exceeded.", the
message the real service gives (see docs/server.md).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("reset", "truncate")
DEFAULT_MAX_BODY_BYTES = 16 * 2**20


def _fault_kind(key: str) -> str:
    key = str(key).strip().lower()
    if key in FAULT_KINDS:
        return key
    if key.isdigit() and 400 <= int(key) <= 599:
        return str(int(key))
    raise ValueError(f"Unknown fault {key!r}: expected an HTTP status 400-599, 'reset' or 'truncate'")


@dataclass(frozen=True)
class FaultPlan:
    """Which fraction of requests gets which fault; ``seed`` fixes the random draws."""

    fractions: tuple[tuple[str, float], ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        total = 0.0
        for kind, fraction in self.fractions:
            _fault_kind(kind)
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
                raise ValueError(f"Fault {kind}: fraction must be a number in [0, 1], got {fraction!r}")
            total += fraction
        if total > 1 + 1e-9:
            raise ValueError(f"Fault fractions add up to {total:g}; they must add up to at most 1")

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | FaultPlan | None, seed: int | None = None) -> FaultPlan:
        """From ``"429=0.2,reset=0.05,seed=3"``, a mapping of the same, or None (no faults)."""
        if isinstance(value, FaultPlan):
            return value if seed is None else cls(value.fractions, seed)
        items: list[tuple[str, Any]]
        if value is None or value == "":
            items = []
        elif isinstance(value, str):
            items = []
            for part in value.split(","):
                if not part.strip():
                    continue
                key, sep, number = part.partition("=")
                if not sep:
                    raise ValueError(f"Fault {part.strip()!r} must be written kind=fraction, e.g. 429=0.1")
                items.append((key.strip(), number.strip()))
        elif isinstance(value, Mapping):
            items = [(str(k), v) for k, v in value.items()]
        else:
            raise ValueError(f"faults must be a string like '429=0.2,reset=0.05' or a mapping, got {value!r}")
        fractions = []
        for key, number in items:
            if key.strip().lower() == "seed":
                try:
                    seed = int(number) if seed is None else seed
                except (TypeError, ValueError):
                    raise ValueError(f"Fault seed must be an integer, got {number!r}") from None
                continue
            try:
                fraction = float(number)
            except (TypeError, ValueError):
                raise ValueError(f"Fault {key}: fraction must be a number in [0, 1], got {number!r}") from None
            if not math.isfinite(fraction):
                raise ValueError(f"Fault {key}: fraction must be finite, got {number!r}")
            fractions.append((_fault_kind(key), fraction))
        return cls(tuple(fractions), seed)

    def __bool__(self) -> bool:
        return any(fraction > 0 for _, fraction in self.fractions)


class FaultDice:
    """Draws one fault (or None) per request; thread-safe and reproducible with a seed."""

    def __init__(self, plan: FaultPlan):
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        if not self.plan:
            return None
        with self._lock:
            roll = self._random.random()
        cumulative = 0.0
        for kind, fraction in self.plan.fractions:
            cumulative += fraction
            if roll < cumulative:
                return kind
        return None


@dataclass(frozen=True)
class ServerOptions:
    latency_ms: float = 0.0
    latency_ms_per_mb: float = 0.0  # per 1,000,000 response bytes
    faults: FaultPlan = field(default_factory=FaultPlan)
    token: str | None = field(default=None, repr=False)  # a secret: never in reprs or logs
    max_concurrency: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Output pixels x images (Image.load calls in the expression) one computePixels may
    # cost; beyond it the answer is Earth Engine's 400 "User memory limit exceeded." (None: no limit).
    compute_budget: int | None = None

    def __post_init__(self) -> None:
        for name in ("latency_ms", "latency_ms_per_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number of milliseconds, got {value!r}")
        if self.max_concurrency is not None and (
            isinstance(self.max_concurrency, bool)
            or not isinstance(self.max_concurrency, int)
            or self.max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be a positive integer or None, got {self.max_concurrency!r}")
        if self.token is not None and (not isinstance(self.token, str) or not self.token):
            raise ValueError("token must be a non-empty string or None")
        if self.compute_budget is not None and (
            isinstance(self.compute_budget, bool) or not isinstance(self.compute_budget, int) or self.compute_budget < 1
        ):
            raise ValueError(
                f"compute_budget must be a positive integer (output pixels x images per computePixels) or None, "
                f"got {self.compute_budget!r}"
            )
        if isinstance(self.max_body_bytes, bool) or not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive integer, got {self.max_body_bytes!r}")

    def latency_seconds(self, response_bytes: int) -> float:
        return (self.latency_ms + self.latency_ms_per_mb * response_bytes / 1e6) / 1000.0
