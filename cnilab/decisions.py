"""Decisions between two cells: better, worse, equivalent within a margin, or undecided.

Every comparison works on the logarithm of the metric, so that its effect is a
ratio ("A is 4 % faster than B") whatever the metric's unit, and the
equivalence margin is a share of the mean (``margin`` 0.03: A/B within
1/1.03 .. 1.03).

- *Paired*: when both cells were measured in the same rounds (the same mode, or
  a blocked study whose every round visits every mode), the effect is the mean of
  the per-round log ratios, tested with a one-sample t-test on n rounds. Drift of
  the machine between rounds cancels in each ratio.
- *Unpaired*: otherwise, Welch's t-test on the two cells' log values.

Three one-sided tests at the look's nominal level (cnilab.sequential):
``better`` (the effect lies on the claimed side of 0), ``worse`` (the other
side), and ``equivalent``, the two one-sided tests (TOST) of Schuirmann (1987):
the effect lies above -margin and below +margin. A pair whose difference is
significant but provably inside the margin is *equivalent*: the difference is
real and too small to matter.

Within a claim, ``better`` must hold for every pair (an intersection-union test:
each pair at the full level, no correction needed), while ``worse`` and
``equivalent`` need only one pair and are corrected across the claim's pairs
with Holm's step-down procedure.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cnilab import sequential

BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "undecided"


@dataclass(frozen=True)
class Design:
    """How the claims of one study are decided (the spec's ``decisions`` block)."""

    alpha: float = 0.05          # chance of each kind of wrong decision, one-sided
    spending: str = "pocock"     # cnilab.sequential.SPENDING
    margin: float = 0.03         # equivalence margin, a share of the mean
    margins: dict[str, float] = field(default_factory=dict)   # per metric
    first_look: int = 0          # the spec's minimum repetitions
    cap: int = 0                 # the spec's maximum repetitions (n_max); 0: one look at
                                 # whatever was measured (a fixed-size analysis)
    blocked: bool = False        # every round visits every mode: pair across modes too

    def margin_of(self, metric: str) -> float:
        return self.margins.get(metric, self.margin)

    def as_record(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "spending": self.spending, "margin": self.margin,
                "margins": dict(self.margins), "first_look": self.first_look,
                "cap": self.cap, "blocked": self.blocked}


@dataclass(frozen=True)
class Effect:
    """The log ratio of cell A to cell B, with what its t-test needs."""

    paired: bool
    n: int            # rounds (paired) or the smaller group (unpaired)
    estimate: float   # mean log(A / B)
    se: float         # its standard error (0: every observation agrees exactly)
    dof: float

    def p_above(self, bound: float) -> float:
        """One-sided p-value for "the log ratio exceeds ``bound``"."""
        return self._tail(self.estimate - bound)

    def p_below(self, bound: float) -> float:
        """One-sided p-value for "the log ratio is below ``bound``"."""
        return self._tail(bound - self.estimate)

    def _tail(self, distance: float) -> float:
        if self.se == 0:
            return 0.0 if distance > 0 else 1.0
        from scipy import special  # here: importing scipy costs ~0.5 s
        return float(special.stdtr(self.dof, -distance / self.se))   # Student-t upper tail

    def ratio_interval(self, level: float) -> tuple[float, float]:
        """The two-sided (1 - 2 level) interval of A/B: the one the one-sided tests at
        ``level`` agree with (it excludes 1 exactly when ``better`` or ``worse`` is
        decided, and lies inside the margin exactly when ``equivalent`` is)."""
        if self.se == 0:
            return math.exp(self.estimate), math.exp(self.estimate)
        from scipy import special
        q = float(special.stdtrit(self.dof, 1.0 - max(level, 1e-12))) * self.se
        return math.exp(self.estimate - q), math.exp(self.estimate + q)

    @property
    def ratio(self) -> float:
        return math.exp(self.estimate)


def _logs(values: Sequence[float]) -> list[float] | None:
    if any(v <= 0 or not math.isfinite(v) for v in values):
        return None
    return [math.log(v) for v in values]


def paired_effect(a: dict[int, float], b: dict[int, float]) -> Effect | str:
    """The effect of A over B from the rounds both were measured in (round -> value)."""
    rounds = sorted(a.keys() & b.keys())
    if len(rounds) < 2:
        return f"{len(rounds)} common round(s); a test needs 2"
    la, lb = _logs([a[r] for r in rounds]), _logs([b[r] for r in rounds])
    if la is None or lb is None:
        return "values at or below 0 have no ratio"
    diffs = [x - y for x, y in zip(la, lb, strict=True)]
    sd = statistics.stdev(diffs)
    return Effect(True, len(diffs), statistics.fmean(diffs), sd / math.sqrt(len(diffs)),
                  float(len(diffs) - 1))


def unpaired_effect(a: Sequence[float], b: Sequence[float]) -> Effect | str:
    """The effect of A over B between independent samples (Welch-Satterthwaite)."""
    if len(a) < 2 or len(b) < 2:
        return f"n = {len(a)} and {len(b)}; a test needs 2 of each"
    la, lb = _logs(a), _logs(b)
    if la is None or lb is None:
        return "values at or below 0 have no ratio"
    va, vb = statistics.variance(la) / len(la), statistics.variance(lb) / len(lb)
    estimate = statistics.fmean(la) - statistics.fmean(lb)
    if va + vb == 0:
        return Effect(False, min(len(la), len(lb)), estimate, 0.0, float(len(la) + len(lb) - 2))
    dof = (va + vb) ** 2 / (va ** 2 / (len(la) - 1) + vb ** 2 / (len(lb) - 1))
    return Effect(False, min(len(la), len(lb)), estimate, math.sqrt(va + vb), dof)


@dataclass(frozen=True)
class PairTest:
    """One comparison of a claim at one look: ``a`` should be better than ``b``."""

    a: str
    b: str
    metric: str
    effect: Effect
    higher_is_better: bool
    margin: float
    level: float            # the look's nominal one-sided level for this pair

    @property
    def p_better(self) -> float:
        return (self.effect.p_above(0.0) if self.higher_is_better
                else self.effect.p_below(0.0))

    @property
    def p_worse(self) -> float:
        return (self.effect.p_below(0.0) if self.higher_is_better
                else self.effect.p_above(0.0))

    @property
    def p_equivalent(self) -> float:
        bound = math.log1p(self.margin)
        return max(self.effect.p_above(-bound), self.effect.p_below(bound))

    def describe(self, outcome: str) -> str:
        low, high = self.effect.ratio_interval(self.level)
        kind = "paired by round" if self.effect.paired else "Welch"
        return (f"{self.a} vs {self.b} {self.metric}: ratio {self.effect.ratio:.4f} "
                f"[{low:.4f}, {high:.4f}] ({1 - 2 * self.level:.1%} CI), "
                f"p(better)={self.p_better:.3g}, p(worse)={self.p_worse:.3g}, "
                f"p(within ±{self.margin:.0%})={self.p_equivalent:.3g}, n={self.effect.n} "
                f"({kind}), level {self.level:.3g}: {outcome}")

    def as_record(self, outcome: str) -> dict[str, Any]:
        low, high = self.effect.ratio_interval(self.level)
        return {"a": self.a, "b": self.b, "metric": self.metric, "outcome": outcome,
                "ratio": self.effect.ratio, "ci": [low, high],
                "ci_level": 1 - 2 * self.level, "p_better": self.p_better,
                "p_worse": self.p_worse, "p_equivalent": self.p_equivalent,
                "margin": self.margin, "n": self.effect.n, "paired": self.effect.paired,
                "level": self.level}


def holm(p_values: Sequence[float], levels: Sequence[float]) -> list[bool]:
    """Holm's step-down rejections: sorted by p/level, the i-th smallest (from 0) is
    rejected while p * (m - i) < level for it and every one before it."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i] / levels[i] if levels[i] > 0
                   else math.inf)
    rejected = [False] * m
    for rank, i in enumerate(order):
        if levels[i] > 0 and p_values[i] * (m - rank) < levels[i]:
            rejected[i] = True
        else:
            break
    return rejected


@dataclass(frozen=True)
class PairOutcomes:
    """What a claim's pairs say at one look, after the corrections."""

    tests: tuple[PairTest, ...]
    outcomes: tuple[str, ...]

    @property
    def any_worse(self) -> bool:
        return WORSE in self.outcomes

    @property
    def any_equivalent(self) -> bool:
        return EQUIVALENT in self.outcomes

    @property
    def all_better(self) -> bool:
        return bool(self.outcomes) and all(o == BETTER for o in self.outcomes)


def decide_pairs(tests: Sequence[PairTest]) -> PairOutcomes:
    """Each pair's outcome: ``worse`` and ``equivalent`` after Holm across the pairs,
    ``better`` at the pair's own level (every pair must be better for a claim to hold).
    A pair both significantly better and inside the margin is ``equivalent``."""
    worse = holm([t.p_worse for t in tests], [t.level for t in tests])
    equivalent = holm([t.p_equivalent for t in tests], [t.level for t in tests])
    outcomes = []
    for t, w, e in zip(tests, worse, equivalent, strict=True):
        if w:
            outcomes.append(WORSE)
        elif e:
            outcomes.append(EQUIVALENT)
        elif t.p_better < t.level:
            outcomes.append(BETTER)
        else:
            outcomes.append(UNDECIDED)
    return PairOutcomes(tuple(tests), tuple(outcomes))


def look_level(design: Design, sizes: Sequence[int]) -> float:
    """The nominal level of a pair's latest look, from its n at every look so far."""
    return sequential.look_level(sizes, design.cap, design.alpha, design.spending)
