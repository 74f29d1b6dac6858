"""The decision statistics against hand-computed values and published tables, and a
simulation of the whole claim procedure whose false-decision rates must stay within
the stated error level."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from cnilab.claims import EQUAL, FAILS, HOLDS, CellTable, Claim, decide
from cnilab.decisions import (
    BETTER,
    EQUIVALENT,
    UNDECIDED,
    WORSE,
    Design,
    PairTest,
    decide_pairs,
    holm,
    paired_effect,
    unpaired_effect,
)
from cnilab.sequential import look_level, nominal_levels, spent
from cnilab.summary import summarize_cells


def _t2_sf(t: float) -> float:
    """Student's t upper tail at 2 degrees of freedom, in closed form:
    P(T > t) = 1/2 - t / (2 sqrt(t^2 + 2))."""
    return 0.5 - t / (2.0 * math.sqrt(t * t + 2.0))


def test_paired_effect_matches_the_hand_computed_t_test() -> None:
    # log ratios 0, ln 1.1, ln 1.2: mean 0.0925439, sd 0.0911922, se 0.0526499
    effect = paired_effect({1: 10.0, 2: 11.0, 3: 12.0}, {1: 10.0, 2: 10.0, 3: 10.0})
    assert not isinstance(effect, str)
    assert effect.paired and effect.n == 3 and effect.dof == 2
    assert effect.estimate == pytest.approx(0.0925439, abs=1e-7)
    assert effect.se == pytest.approx(0.0526499, abs=1e-7)
    t = 0.0925439 / 0.0526499                           # 1.75772
    assert effect.p_above(0.0) == pytest.approx(_t2_sf(t), abs=1e-6)   # 0.11044
    assert effect.p_above(0.0) == pytest.approx(0.11044, abs=1e-5)
    # TOST with a 30 % margin: the two one-sided p-values, the larger one counts
    bound = math.log(1.3)
    upper = effect.p_below(bound)                       # t = 3.2255: 0.04209
    lower = effect.p_above(-bound)                      # t = 6.7409: 0.01066
    assert upper == pytest.approx(_t2_sf((bound - 0.0925439) / 0.0526499), abs=1e-6)
    assert lower == pytest.approx(_t2_sf((bound + 0.0925439) / 0.0526499), abs=1e-6)
    test = PairTest("a", "b", "throughput_gbps", effect, True, 0.30, 0.05)
    assert test.p_equivalent == pytest.approx(max(upper, lower)) == pytest.approx(0.0421,
                                                                                  abs=1e-4)
    # the (1 - 2 level) interval agrees with the tests: it lies inside 1/1.3 .. 1.3
    low, high = effect.ratio_interval(0.05)
    assert 1 / 1.3 < low < 1.0 < high < 1.3
    # rounds measured for only one cell do not pair
    assert paired_effect({1: 1.0, 2: 2.0}, {2: 1.0, 3: 1.0}) == "1 common round(s); a test " \
        "needs 2"


def test_unpaired_effect_is_welch_on_logs() -> None:
    # logs 1, 2, 3 vs 0, 0.5, 1: difference 1.5, se sqrt(1/3 + 1/12) = 0.645497,
    # Welch-Satterthwaite dof 0.173611 / 0.0590278 = 2.94118
    effect = unpaired_effect([math.e, math.e ** 2, math.e ** 3], [1.0, math.e ** 0.5, math.e])
    assert not isinstance(effect, str) and not effect.paired
    assert effect.estimate == pytest.approx(1.5)
    assert effect.se == pytest.approx(0.645497, abs=1e-6)
    assert effect.dof == pytest.approx(2.94118, abs=1e-5)
    assert unpaired_effect([1.0, 0.0], [1.0, 2.0]) == "values at or below 0 have no ratio"


def test_holm_step_down() -> None:
    # sorted 0.01, 0.03, 0.04: 0.01 x 3 < 0.05 rejects, 0.03 x 2 = 0.06 stops
    assert holm([0.04, 0.01, 0.03], [0.05] * 3) == [False, True, False]
    assert holm([0.01, 0.02], [0.05, 0.05]) == [True, True]     # 0.02 x 1 < 0.05
    assert holm([0.2], [0.05]) == [False]


def _pair(estimate: float, se: float, margin: float = 0.03, level: float = 0.05,
          higher: bool = True) -> PairTest:
    effect = paired_effect({1: 1.0, 2: 1.0}, {1: 1.0, 2: 1.0})
    assert not isinstance(effect, str)
    return PairTest("a", "b", "m", type(effect)(True, 10, estimate, se, 9.0), higher, margin,
                    level)


def test_pair_outcomes_and_their_precedence() -> None:
    decided = decide_pairs([
        _pair(0.10, 0.01),                 # clearly better
        _pair(-0.10, 0.01),                # clearly worse
        _pair(0.001, 0.002),               # inside +-3 %: equivalent
        _pair(0.01, 0.002),                # significant, but inside the margin: equivalent
        _pair(0.02, 0.05),                 # nothing shown
        _pair(-0.10, 0.01, higher=False),  # lower is better: the same numbers are better
    ])
    assert decided.outcomes == (BETTER, WORSE, EQUIVALENT, EQUIVALENT, UNDECIDED, BETTER)


def test_spending_functions() -> None:
    # Lan & DeMets (1983): alpha ln(1 + (e - 1) t) and 2 - 2 Phi(z_{alpha/2} / sqrt(t))
    assert spent("pocock", 0.05, 1.0) == pytest.approx(0.05)
    assert spent("pocock", 0.05, 0.5) == pytest.approx(0.05 * math.log(1 + (math.e - 1) / 2))
    assert spent("obrien-fleming", 0.05, 1.0) == pytest.approx(0.05)
    assert spent("obrien-fleming", 0.05, 0.25) == pytest.approx(8.85754e-5, rel=1e-4)


@pytest.mark.parametrize(("function", "alpha", "fractions", "z"), [
    # one-sided alpha 0.05, looks at 1/4 .. 1: the table of SeqBounds.jl's README
    # (PharmCat/SeqBounds.jl), nominal p 8.85754e-5, 0.00554366, 0.0218979, 0.0427037
    ("obrien-fleming", 0.05, [0.25, 0.5, 0.75, 1.0], [3.74955, 2.53993, 2.01604, 1.72014]),
    # one-sided 0.025, five equal looks: Jennison & Turnbull (2000) table 7.6 values for
    # the Lan-DeMets O'Brien-Fleming and Pocock type functions
    ("obrien-fleming", 0.025, [0.2, 0.4, 0.6, 0.8, 1.0], [4.877, 3.357, 2.680, 2.290, 2.031]),
    ("pocock", 0.025, [0.2, 0.4, 0.6, 0.8, 1.0], [2.438, 2.427, 2.410, 2.397, 2.386]),
])
def test_group_sequential_boundaries_match_published_tables(
        function: str, alpha: float, fractions: list[float], z: list[float]) -> None:
    from scipy.stats import norm

    levels = nominal_levels(fractions, alpha, function)
    assert [float(norm.isf(p)) for p in levels] == pytest.approx(z, abs=2e-3)


def test_look_levels_count_each_sample_size_once() -> None:
    one = look_level([5], cap=5, alpha=0.05)
    assert one == pytest.approx(0.05)          # a single look at the cap spends everything
    # a look at which nothing new arrived (a failed round) is not a new look
    assert look_level([3, 3, 4], 10, 0.05) == pytest.approx(look_level([3, 4], 10, 0.05))
    assert look_level([3, 4], 10, 0.05) < 0.05 and look_level([0], 10, 0.05) == 0.0
    with pytest.raises(ValueError, match="increase"):
        nominal_levels([0.5, 0.5], 0.05)


# --------------------------------------------------------------------- simulation

ALPHA = 0.05
RUNS = 800
# the allowed false-decision rate: the stated alpha plus 3 Monte Carlo standard errors
LIMIT = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def _study(ratios: list[float], rounds: int, rng: random.Random, *, cv: float = 0.02,
           drift: float = 0.05) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of a blocked study: each round shifts every cell by the same random
    drift (the machine), and each measurement adds its own noise."""
    modes = ["good/x"] + [f"other{i}/x" for i in range(len(ratios))]
    out: list[dict[str, Any]] = []
    for r in range(1, rounds + 1):
        shift = rng.gauss(0.0, drift)
        for k, key in enumerate(modes):
            mean = 10.0 if k == 0 else 10.0 / ratios[k - 1]
            cni, mode = key.split("/")
            cell_id = f"{key}/inter-host/iperf3-tcp//"
            out.append({"cell_id": cell_id, "key": f"{cell_id}#r{r}", "repetition": r,
                        "warmup": False, "status": "ok",
                        "cell": {"cni": cni, "mode": mode, "policy": False,
                                 "placement": "inter-host", "suite": "iperf3-tcp",
                                 "params": {}, "condition": {}},
                        "metrics": {"throughput_gbps": mean * math.exp(
                            shift + rng.gauss(0.0, cv))}})
    return out, modes


def _rates(ratios: list[float], design: Design, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    for _ in range(RUNS):
        records, modes = _study(ratios, design.cap, rng)
        claim = Claim("S", "the first mode is faster", "simulation", "order",
                      {"better": [modes[0]], "than": modes[1:], "metric": "throughput_gbps",
                       "suite": "iperf3-tcp", "placement": "inter-host"})
        verdict = decide(claim, CellTable(summarize_cells(records), records), design)
        counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
    return {k: v / RUNS for k, v in counts.items()}


DESIGN = Design(alpha=ALPHA, spending="pocock", margin=0.03, first_look=3, cap=10,
                blocked=True)


def test_simulated_false_decisions_stay_within_alpha() -> None:
    """Looks after rounds 3..10, the procedure a study runs; false decisions counted over
    800 simulated studies for each truth."""
    none = _rates([1.0], DESIGN, 1)                  # no difference at all
    assert none.get(HOLDS, 0) <= LIMIT and none.get(FAILS, 0) <= LIMIT
    for ratio in (1.03, 1 / 1.03):                   # a difference exactly at the margin
        edge = _rates([ratio], DESIGN, 2)
        assert edge.get(EQUAL, 0) <= LIMIT, (ratio, edge)
    large = _rates([1.10], DESIGN, 3)                # a large true difference
    assert large.get(FAILS, 0) + large.get(EQUAL, 0) <= LIMIT
    assert large.get(HOLDS, 0) >= 0.95               # and it is found
    # two pairs, both without a difference: Holm keeps "does not hold" within alpha
    both = _rates([1.0, 1.0], DESIGN, 4)
    assert both.get(FAILS, 0) <= LIMIT and both.get(HOLDS, 0) <= LIMIT


def test_pairing_by_round_cancels_machine_drift() -> None:
    """The same 5 % drift between rounds: paired by round, a 4 % difference is found in
    most studies; compared unpaired (Welch), it hides in the drift."""
    paired = _rates([1.04], DESIGN, 5)
    unpaired = _rates([1.04], Design(alpha=ALPHA, margin=0.03, first_look=3, cap=10), 5)
    assert paired.get(HOLDS, 0) >= 0.8
    assert unpaired.get(HOLDS, 0) <= 0.3
