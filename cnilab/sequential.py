"""Group-sequential decision levels: how much error each look at the data may spend.

A study that looks at its data after every round and stops a claim as soon as it
is decided would, with a fixed 5 % test at every look, decide wrongly far more
often than 5 % of the time. The Lan-DeMets alpha-spending approach fixes that: a
spending function alpha*(t) says how much of the total one-sided error alpha may
have been spent by the time a fraction t of the largest planned sample has been
seen (t = n / n_max), and each look's boundary is set so that the probability,
under the null hypothesis, of first crossing at that look equals the increment
alpha*(t_k) - alpha*(t_{k-1}). Looks need not be planned in advance; only n_max
(the spec's repetition cap) is.

The boundaries assume the standardised statistic has independent increments
(Z_k = S_k / sqrt(t_k), S_k a sum of independent Gaussian increments), the
canonical joint distribution of Jennison & Turnbull (2000), ch. 3 and 7. They are
computed by recursive numerical integration on a grid of S (ch. 19). Each
boundary is returned as a nominal one-sided p-level, which the t-tests of
cnilab.decisions compare their p-values with: at the small n of a network
benchmark the t-distribution is what the data follow, and the simulation test
(tests/test_decisions.py) measures the error rates this gives.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# scipy and numpy are imported where they are used: importing them costs ~0.5 s, and
# every lab module and CLI command imports the spec, which imports this


def _pocock(alpha: float, t: float) -> float:
    """Lan & DeMets' Pocock-type function: spends early, so clear differences stop soon."""
    return alpha * math.log(1.0 + (math.e - 1.0) * t)


def _obrien_fleming(alpha: float, t: float) -> float:
    """Lan & DeMets' O'Brien-Fleming-type function (one-sided): spends almost nothing
    early and keeps nearly the full alpha for the last look."""
    if t <= 0:
        return 0.0
    from scipy import stats as scipy_stats
    z = scipy_stats.norm.isf(alpha / 2.0)
    return float(2.0 * scipy_stats.norm.sf(z / math.sqrt(t)))


SPENDING: dict[str, Callable[[float, float], float]] = {
    "pocock": _pocock,
    "obrien-fleming": _obrien_fleming,
}

_GRID_STEP = 0.02     # grid spacing on the standard-normal scale of S
_TAIL = 8.0           # the grid reaches 8 standard deviations below the boundary


def spent(function: str, alpha: float, t: float) -> float:
    """alpha*(t): the error that may have been spent by information fraction ``t``."""
    t = min(max(t, 0.0), 1.0)
    return SPENDING[function](alpha, t)


def nominal_levels(fractions: Sequence[float], alpha: float,
                   function: str = "pocock") -> list[float]:
    """The one-sided nominal p-level of each look at information fractions
    ``fractions`` (strictly increasing, in (0, 1]).

    A test at look k rejects when its one-sided p-value is below the k-th level.
    The levels are computed so that, under the null hypothesis, the probability
    of a first rejection at look k is exactly the k-th spending increment.
    """
    return list(_levels(tuple(float(t) for t in fractions), float(alpha), function))


@lru_cache(maxsize=4096)
def _levels(fractions: tuple[float, ...], alpha: float, function: str) -> tuple[float, ...]:
    if function not in SPENDING:
        raise ValueError(f"unknown spending function {function!r} "
                         f"(known: {', '.join(sorted(SPENDING))})")
    if any(not 0.0 < t <= 1.0 for t in fractions):
        raise ValueError(f"information fractions must lie in (0, 1], got {fractions}")
    if any(b <= a for a, b in itertools.pairwise(fractions)):
        raise ValueError(f"information fractions must increase, got {fractions}")
    import numpy as np
    from scipy import optimize
    from scipy import stats as scipy_stats

    out: list[float] = []
    previous_t, previous_spent = 0.0, 0.0
    grid: np.ndarray | None = None       # S values where the test has not stopped yet
    density: np.ndarray | None = None    # sub-density of S there (times the grid weights)
    for t in fractions:
        increment = spent(function, alpha, t) - previous_spent
        sd_step = math.sqrt(t - previous_t)
        if grid is None:
            # first look: S ~ N(0, t); boundary straight from the normal quantile
            bound = scipy_stats.norm.isf(increment) * math.sqrt(t) if increment > 0 \
                else math.inf
        else:
            assert density is not None
            g, d = grid, density

            def crossing(b: float, g: np.ndarray = g, d: np.ndarray = d,
                         s: float = sd_step) -> float:
                return float(np.sum(d * scipy_stats.norm.sf((b - g) / s)))

            if increment <= 0:
                bound = math.inf
            else:
                low = float(g.min()) - _TAIL * sd_step
                high = float(g.max()) + _TAIL * sd_step
                if crossing(low) <= increment:   # cannot spend that much: reject anything
                    bound = low
                else:
                    bound = optimize.brentq(lambda b, goal=increment: crossing(b) - goal,
                                            low, high, xtol=1e-10)
        level = float(scipy_stats.norm.sf(bound / math.sqrt(t))) if math.isfinite(bound) \
            else 0.0
        out.append(level)
        # the continuation region's sub-density at this look, for the next one
        top = bound if math.isfinite(bound) else _TAIL * math.sqrt(t)
        bottom = top - _TAIL * math.sqrt(t) - 2.0
        points = math.ceil((top - bottom) / (_GRID_STEP * math.sqrt(t))) + 1
        new_grid = np.linspace(bottom, top, points)
        weights = np.full(points, new_grid[1] - new_grid[0])   # trapezoid rule
        weights[[0, -1]] /= 2.0
        if grid is None:
            pdf = scipy_stats.norm.pdf(new_grid, scale=math.sqrt(t))
        else:
            assert density is not None
            pdf = (scipy_stats.norm.pdf((new_grid[:, None] - grid[None, :]) / sd_step)
                   / sd_step) @ density
        grid, density = new_grid, pdf * weights
        previous_t, previous_spent = t, previous_spent + max(increment, 0.0)
    return tuple(out)


def look_level(sizes: Sequence[int], cap: int, alpha: float, function: str = "pocock") -> float:
    """The nominal one-sided level of the latest look, given the sample size seen at
    every look so far (repeated sizes, looks at which nothing new arrived, count once)."""
    distinct: list[int] = []
    for n in (min(size, cap) for size in sizes):
        if n > 0 and (not distinct or n > distinct[-1]):
            distinct.append(n)
    if not distinct:
        return 0.0
    return nominal_levels([n / cap for n in distinct], alpha, function)[-1]
