"""Latency summaries: median and tail percentiles of a list of durations (seconds)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Latency:
    """Milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, durations_s: Sequence[float]) -> Latency:
        values = sorted(durations_s)
        if not values:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        ms = 1000.0
        return cls(
            count=len(values),
            mean_ms=sum(values) / len(values) * ms,
            p50_ms=percentile(values, 0.50) * ms,
            p95_ms=percentile(values, 0.95) * ms,
            p99_ms=percentile(values, 0.99) * ms,
            max_ms=values[-1] * ms,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            key: round(value, 3) if isinstance(value, float) else value
            for key, value in asdict(self).items()
        }
