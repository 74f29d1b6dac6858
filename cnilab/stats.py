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


@dataclass(frozen=True)
class Comparison:
    """Welch's t-test between two cells (unequal variances, Welch-Satterthwaite dof)."""

    mean_a: float
    mean_b: float
    t: float
    dof: float
    p_value: float

    @property
    def ratio(self) -> float | None:
        return self.mean_a / self.mean_b if self.mean_b else None

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def welch(a: list[float], b: list[float]) -> Comparison | None:
    """Two-sided Welch t-test of mean(a) vs mean(b); None when either has < 2 values.

    With zero variance in both samples the means either differ exactly (p = 0) or
    not at all (p = 1): a constant but different instrument reading is a real
    difference, not an undefined one.
    """
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats as scipy_stats

    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return Comparison(ma, mb, math.inf if ma != mb else 0.0, float(len(a) + len(b) - 2),
                          0.0 if ma != mb else 1.0)
    t = (ma - mb) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    p = float(2.0 * scipy_stats.t.sf(abs(t), dof))
    return Comparison(ma, mb, t, dof, p)


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman rank correlation (ties get average ranks); None for < 3 points."""
    if len(xs) != len(ys) or len(xs) < 3:
        return None

    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2.0 + 1.0
            i = j + 1
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)
