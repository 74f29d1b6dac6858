"""Statistics over repeated measurements: pure functions, no I/O.

The 95 % confidence interval uses Student's t with n-1 degrees of freedom:
with the handful of repetitions a network benchmark can afford, the normal
approximation would understate the uncertainty badly (t = 4.30 at n = 3).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    median: float
    stdev: float | None          # sample standard deviation (n-1); None for n < 2
    ci95_half_width: float | None
    ci95_low: float | None
    ci95_high: float | None
    cv: float | None             # coefficient of variation = stdev / mean
    minimum: float
    maximum: float

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def t_critical(confidence: float, dof: int) -> float:
    """Two-sided Student t critical value."""
    from scipy import stats as scipy_stats  # imported here: slow to load, rarely needed

    return float(scipy_stats.t.ppf(0.5 + confidence / 2.0, dof))


def summarize(values: list[float], confidence: float = 0.95) -> Summary:
    """Mean, median, spread and the Student-t confidence interval of the mean."""
    if not values:
        raise ValueError("no values to summarize")
    n = len(values)
    mean = statistics.fmean(values)
    median = statistics.median(values)
    if n < 2:
        return Summary(n, mean, median, None, None, None, None, None, min(values), max(values))
    stdev = statistics.stdev(values)
    half = t_critical(confidence, n - 1) * stdev / math.sqrt(n)
    cv = stdev / mean if mean else None
    return Summary(n, mean, median, stdev, half, mean - half, mean + half, cv,
                   min(values), max(values))
