"""The paper's conclusions as machine-checkable expectations over cells.

A spec lists ``claims``; each names cells by mode, placement, suite (and
optionally params and sweep condition) and says what should hold between them:

- ``best``: ``candidate`` beats every mode in ``among``;
- ``order``: every mode in ``better`` beats every mode in ``than``;
- ``no_single_best``: the winner among ``among`` differs between ``placements``;
- ``trend``: for every mode in ``modes`` the metric goes ``decreasing`` or
  ``increasing`` as the sweep key ``sweep`` grows;
- ``untestable``: stated for completeness, with the ``reason`` it cannot be
  checked by cnilab (e.g. NIC tunnel offload, memory of agents we do not run).

Each claim is a set of comparisons between cells, decided by cnilab.decisions
(paired by round where the design allows, on log values, TOST for equivalence)
at looks controlled by cnilab.sequential. Verdicts: ``holds`` (every comparison
significantly the stated way), ``does not hold`` (one is significantly the other
way), ``no meaningful difference`` (one lies provably within the equivalence
margin), ``inconclusive`` (not decided by the last look: more rounds needed), and
``not testable`` (with the reason: missing cells, hardware the lab lacks, ...).
docs/statistics.md explains the procedure and its error rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from cnilab.decisions import (
    BETTER,
    EQUIVALENT,
    UNDECIDED,
    WORSE,
    Design,
    Effect,
    PairOutcomes,
    PairTest,
    decide_pairs,
    look_level,
    paired_effect,
    unpaired_effect,
)
from cnilab.errors import SpecError
from cnilab.stats import spearman
from cnilab.summary import CellSummary, lower_is_better
from cnilab.yamlpos import PosDict, PosList, line_of

KINDS: dict[str, set[str]] = {
    "best": {"candidate", "among", "metric", "suite", "placement"},
    "order": {"better", "than", "metric", "suite", "placement"},
    "no_single_best": {"among", "metric", "suite", "placements"},
    "trend": {"modes", "sweep", "direction", "metric", "suite", "placement"},
    "untestable": {"reason"},
}
COMMON = {"id", "text", "source", "kind"}
OPTIONAL = {"params", "condition", "note", "at_max"}
# the shape of every claim field (checked before any field is used)
_LISTS = {"among", "better", "than", "modes", "placements"}
_MAPPINGS = {"params", "condition"}
HOLDS, FAILS, EQUAL, INCONCLUSIVE, UNTESTABLE = (
    "holds", "does not hold", "no meaningful difference", "inconclusive", "not testable")
DECIDED = (HOLDS, FAILS, EQUAL)


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    source: str
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    reason: str
    evidence: list[str] = field(default_factory=list)
    look: int | None = None          # the round after which it was decided (or last seen)
    n: int | None = None             # the smallest n among its comparisons at that look
    pairs: list[dict[str, Any]] = field(default_factory=list)   # each comparison's numbers


def parse_claims(value: Any, where: Any, path: str, mode_keys: set[str]) -> tuple[Claim, ...]:
    """Validate the ``claims`` list of a spec (FILE:LINE errors)."""
    if not isinstance(value, PosList):
        raise SpecError(path, line_of(where, "claims"), "'claims' must be a list")
    claims: list[Claim] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        name = f"claims[{i}]"
        if not isinstance(item, PosDict):
            raise SpecError(path, line_of(value, i), f"'{name}' must be a mapping")
        for key, field_value in item.items():
            if key in _LISTS:
                ok = isinstance(field_value, PosList) and all(
                    isinstance(x, str) for x in field_value)
                shape = "a list of names"
            elif key in _MAPPINGS:
                ok, shape = isinstance(field_value, PosDict), "a mapping"
            else:
                ok = isinstance(field_value, str | int | float) and not isinstance(
                    field_value, bool)
                shape = "a single value (text or number)"
            if not ok:
                raise SpecError(path, line_of(item, key), f"'{name}.{key}' must be {shape}")
        kind = item.get("kind")
        if kind not in KINDS:
            raise SpecError(path, line_of(item, "kind"), f"'{name}.kind' must be one of "
                            f"{', '.join(sorted(KINDS))}, got {kind!r}")
        allowed = COMMON | KINDS[kind] | OPTIONAL
        for key in item:
            if key not in allowed:
                raise SpecError(path, line_of(item, key), f"unknown key '{key}' in {name} "
                                f"(kind {kind} allows: {', '.join(sorted(allowed))})")
        for key in sorted(COMMON | KINDS[kind]):
            if key not in item:
                raise SpecError(path, line_of(item), f"'{name}' ({kind}) is missing '{key}'")
        if item["id"] in seen:
            raise SpecError(path, line_of(item, "id"), f"{name}: id '{item['id']}' repeated")
        seen.add(str(item["id"]))
        for key in ("candidate",):
            if key in item and item[key] not in mode_keys:
                raise SpecError(path, line_of(item, key), f"'{name}.{key}': {item[key]!r} is "
                                "not in the matrix (" + ", ".join(sorted(mode_keys)) + ")")
        for key in ("among", "better", "than", "modes"):
            if key in item:
                modes = item[key]
                if not isinstance(modes, PosList) or not modes:
                    raise SpecError(path, line_of(item, key),
                                    f"'{name}.{key}' must be a non-empty list of matrix keys")
                for j, mode in enumerate(modes):
                    if mode not in mode_keys:
                        raise SpecError(path, line_of(modes, j), f"'{name}.{key}[{j}]': "
                                        f"{mode!r} is not in the matrix (" +
                                        ", ".join(sorted(mode_keys)) + ")")
        if kind == "trend" and item["direction"] not in ("decreasing", "increasing"):
            raise SpecError(path, line_of(item, "direction"),
                            f"'{name}.direction' must be decreasing or increasing")
        fields = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict)
                      else v) for k, v in item.items() if k not in COMMON}
        claims.append(Claim(str(item["id"]), str(item["text"]), str(item["source"]), kind,
                            fields))
    return tuple(claims)


# ---------------------------------------------------------------- evaluation


class CellTable:
    """The cells a claim names, and their values up to a round."""

    def __init__(self, cells: list[CellSummary], records: list[dict[str, Any]]) -> None:
        self.cells, self.records = cells, records
        self._by_cell: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            if not r.get("warmup") and r["status"] == "ok":
                self._by_cell.setdefault(r["cell_id"], []).append(r)

    def _at_max(self, claim: Claim) -> tuple[dict[str, Any], dict[str, Any]]:
        """params and condition of the claim, with ``at_max: KEY`` resolved to the largest
        value of KEY measured for the claim's suite (quick and full runs sweep different
        ranges; the claim is about the heaviest point)."""
        params = dict(claim.get("params") or {})
        condition = dict(claim.get("condition") or {})
        key = claim.get("at_max")
        if key:
            values = [c.params.get(key, c.condition.get(key)) for c in self.cells
                      if c.suite == claim.get("suite")]
            numbers = [v for v in values if isinstance(v, int | float)]
            if numbers:
                target = params if any(key in c.params for c in self.cells) else condition
                target[key] = max(numbers)
        return params, condition

    def find(self, claim: Claim, mode: str, placement: str | None = None,
             condition: dict[str, Any] | None = None) -> CellSummary | str:
        """The one cell a claim names, or why there is none."""
        placement = placement or claim.get("placement")
        params, claim_condition = self._at_max(claim)
        if condition is None and claim_condition:
            condition = claim_condition
        found = [c for c in self.cells if c.matches(
            mode=mode, placement=placement, suite=claim.get("suite"),
            params=params, condition=condition)]
        if not found:
            return f"no measurements of {mode} at {placement} ({claim.get('suite')})"
        if len(found) > 1 and condition is None:
            # with no condition given, the unloaded cell is meant
            plain = [c for c in found if not any(c.condition.values())]
            found = plain or found
        if len(found) > 1:
            return (f"{len(found)} cells of {mode} at {placement} match; name params or a "
                    "condition in the claim")
        return found[0]

    def series(self, claim: Claim, mode: str) -> list[tuple[int, CellSummary]]:
        """A trend claim's sweep points for one mode, by sweep value: the cells with the
        sweep key (and the claim's other condition values) plus the unconditioned cell,
        which is the 0 point."""
        key = claim.get("sweep")
        base_condition = dict(claim.get("condition") or {})
        return sorted(
            ((int(c.condition.get(key, 0)), c) for c in self.cells
             if c.matches(mode=mode, placement=claim.get("placement"),
                          suite=claim.get("suite"), params=claim.get("params"))
             and (not c.condition or (key in c.condition and all(
                 c.condition.get(k) == v for k, v in base_condition.items())))),
            key=lambda p: p[0])

    def rounds(self, cell: CellSummary, metric: str, upto: int) -> dict[int, float]:
        """round (repetition) -> value of ``metric``, for the rounds up to ``upto``."""
        return {int(r["repetition"]): float(r["metrics"][metric])
                for r in self._by_cell.get(cell.cell_id, [])
                if r["repetition"] <= upto and isinstance(r["metrics"].get(metric), int | float)
                and not isinstance(r["metrics"].get(metric), bool)}

    def last_round(self, cells: list[CellSummary]) -> int:
        return max((int(r["repetition"]) for c in cells for r in self._by_cell.get(c.cell_id, [])),
                   default=0)


def _mean(values: dict[int, float]) -> float:
    return sum(values.values()) / len(values) if values else math.nan


def _fmt(values: dict[int, float]) -> str:
    return f"{_mean(values):.4g} (n={len(values)})" if values else "no values"


class _Look:
    """Builds the pair tests of one claim at one look (round ``upto``)."""

    def __init__(self, table: CellTable, design: Design, upto: int) -> None:
        self.table, self.design, self.upto = table, design, upto

    def values(self, cell: CellSummary, metric: str, upto: int | None = None) -> dict[int, float]:
        return self.table.rounds(cell, metric, self.upto if upto is None else upto)

    def _effect(self, a: CellSummary, b: CellSummary, metric: str,
                upto: int) -> Effect | str:
        va, vb = self.values(a, metric, upto), self.values(b, metric, upto)
        if a.mode_key == b.mode_key or self.design.blocked:
            return paired_effect(va, vb)
        return unpaired_effect(list(va.values()), list(vb.values()))

    def pair(self, a: CellSummary, b: CellSummary, metric: str, higher_is_better: bool,
             label_a: str, label_b: str) -> PairTest | str:
        effect = self._effect(a, b, metric, self.upto)
        if isinstance(effect, str):
            return f"{label_a} vs {label_b}: {effect}"
        # n at every look so far: the level of this look depends on the looks before it
        va, vb = self.values(a, metric), self.values(b, metric)
        paired = effect.paired
        sizes = []
        for r in range(min(self.design.first_look, self.upto), self.upto + 1):
            ra = {k for k in va if k <= r}
            rb = {k for k in vb if k <= r}
            sizes.append(len(ra & rb) if paired else min(len(ra), len(rb)))
        return PairTest(label_a, label_b, metric, effect, higher_is_better,
                        self.design.margin_of(metric), look_level(self.design, sizes))


@dataclass
class _Outcome:
    verdict: str
    reason: str
    evidence: list[str]
    tests: list[tuple[PairTest, str]] = field(default_factory=list)


def _judge(decided: PairOutcomes, holds: str, fails: str, untested: list[str],
           evidence: list[str], *, monotone: dict[int, bool] | None = None) -> _Outcome:
    """The claim's verdict from its pairs: 'does not hold' if any pair is significantly
    the other way, 'no meaningful difference' if any is within the margin, 'holds' if
    every one is significantly the stated way (and, for trends, monotone)."""
    outcomes = list(decided.outcomes)
    for i, ok in (monotone or {}).items():
        if outcomes[i] == BETTER and not ok:
            outcomes[i] = UNDECIDED
    tests = list(zip(decided.tests, outcomes, strict=True))
    evidence = evidence + untested    # each test's numbers are added once decided
    if WORSE in outcomes:
        return _Outcome(FAILS, fails, evidence, tests)
    if EQUIVALENT in outcomes:
        return _Outcome(EQUAL, "at least one difference lies within the equivalence margin",
                        evidence, tests)
    if outcomes and all(o == BETTER for o in outcomes) and not untested:
        return _Outcome(HOLDS, holds, evidence, tests)
    return _Outcome(INCONCLUSIVE, "some differences are neither significant nor shown to "
                    "lie within the margin", evidence, tests)


def _pairs(claim: Claim, look: _Look, winners: list[str], losers: list[str]) -> _Outcome:
    metric = claim.get("metric")
    higher = not lower_is_better(metric)
    tests: list[PairTest] = []
    untested: list[str] = []
    evidence: list[str] = []
    for w in winners:
        for lo in losers:
            cw, cl = look.table.find(claim, w), look.table.find(claim, lo)
            if isinstance(cw, str) or isinstance(cl, str):
                return _Outcome(UNTESTABLE, cw if isinstance(cw, str) else str(cl), [])
            evidence.append(f"{w} {_fmt(look.values(cw, metric))} vs {lo} "
                            f"{_fmt(look.values(cl, metric))} {metric}")
            test = look.pair(cw, cl, metric, higher, w, lo)
            if isinstance(test, str):
                if "no ratio" in test:
                    return _Outcome(UNTESTABLE, test, [])
                untested.append(test)
            else:
                tests.append(test)
    direction = "higher" if higher else "lower"
    return _judge(decide_pairs(tests), f"every comparison significant, {direction} is better",
                  "at least one comparison is significantly the other way", untested, evidence)


def _no_single_best(claim: Claim, look: _Look) -> _Outcome:
    metric, among = claim.get("metric"), list(claim.get("among"))
    higher = not lower_is_better(metric)
    winners: dict[str, str] = {}
    cells: dict[tuple[str, str], CellSummary] = {}
    evidence: list[str] = []
    for placement in claim.get("placements"):
        ranked: list[tuple[float, str]] = []
        for mode in among:
            cell = look.table.find(claim, mode, placement)
            if isinstance(cell, str):
                return _Outcome(UNTESTABLE, cell, [])
            cells[(mode, placement)] = cell
            values = look.values(cell, metric)
            if not values:
                return _Outcome(INCONCLUSIVE, f"no values of {mode} at {placement} yet", [])
            ranked.append((_mean(values), mode))
        ranked.sort(reverse=higher)
        winners[placement] = ranked[0][1]
        evidence.append(f"{placement}: best {ranked[0][1]} "
                        f"{_fmt(look.values(cells[(ranked[0][1], placement)], metric))}, next "
                        f"{ranked[1][1]} "
                        f"{_fmt(look.values(cells[(ranked[1][1], placement)], metric))} {metric}")
    names = set(winners.values())
    tests: list[PairTest] = []
    untested: list[str] = []

    def add(a: str, b: str, placement: str) -> None:
        test = look.pair(cells[(a, placement)], cells[(b, placement)], metric, higher,
                         f"{a}@{placement}", f"{b}@{placement}")
        (untested.append if isinstance(test, str) else tests.append)(test)  # type: ignore[arg-type]

    if len(names) == 1:
        # one mode leads everywhere: the claim fails if it leads significantly everywhere
        leader = names.pop()
        for placement in claim.get("placements"):
            for other in among:
                if other != leader:
                    add(leader, other, placement)
        decided = decide_pairs(tests)
        judged = _judge(decided, "", "", untested, evidence)
        if judged.verdict == HOLDS:
            return _Outcome(FAILS, f"{leader} is significantly best at every placement",
                            judged.evidence, judged.tests)
        if judged.verdict == EQUAL:
            return judged
        return _Outcome(INCONCLUSIVE, f"{leader} leads at every placement, not significantly",
                        judged.evidence, judged.tests)
    # each placement's winner must really beat the other placements' winners there
    for placement, winner in winners.items():
        for other in set(winners.values()) - {winner}:
            add(winner, other, placement)
    return _judge(decide_pairs(tests), "the best plugin differs between placements",
                  "a placement's leader is significantly beaten there", untested, evidence)


def _trend(claim: Claim, look: _Look) -> _Outcome:
    metric, key = claim.get("metric"), claim.get("sweep")
    decreasing = claim.get("direction") == "decreasing"
    evidence: list[str] = []
    tests: list[PairTest] = []
    untested: list[str] = []
    monotone: dict[int, bool] = {}
    for mode in claim.get("modes"):
        series = look.table.series(claim, mode)
        if len(series) < 2:
            return _Outcome(UNTESTABLE, f"fewer than 2 {key} values measured for {mode}", [])
        means = [_mean(look.values(c, metric)) for _, c in series]
        if any(math.isnan(m) for m in means):
            return _Outcome(INCONCLUSIVE, f"{mode}: a {key} point has no values yet", [])
        xs = [float(x) for x, _ in series]
        # two points always rank perfectly: the trend is then their comparison alone
        rho = spearman(xs, means) if len(xs) >= 3 else None
        pts = ", ".join(f"{int(x)}: {m:.4g}" for x, m in zip(xs, means, strict=True))
        evidence.append(f"{mode} {metric} by {key}: {pts}; " + (
            "two points: judged on their comparison alone" if len(xs) < 3 else
            f"Spearman {'n/a' if rho is None else f'{rho:.2f}'} (needs |rho| >= 0.8)"))
        (x0, first), (x1, last) = series[0], series[-1]
        test = look.pair(last, first, metric, not decreasing, f"{mode}@{key}={x1}",
                         f"{mode}@{key}={x0}")
        if isinstance(test, str):
            untested.append(test)
            continue
        monotone[len(tests)] = rho is None or (rho <= -0.8 if decreasing else rho >= 0.8)
        tests.append(test)
    word = "decreases" if decreasing else "increases"
    return _judge(decide_pairs(tests), f"{metric} {word} with {key} for every mode",
                  f"{metric} significantly goes the other way", untested, evidence,
                  monotone=monotone)


def _at_look(claim: Claim, look: _Look) -> _Outcome:
    if claim.kind == "best":
        return _pairs(claim, look, [claim.get("candidate")],
                      [m for m in claim.get("among") if m != claim.get("candidate")])
    if claim.kind == "order":
        return _pairs(claim, look, list(claim.get("better")), list(claim.get("than")))
    if claim.kind == "no_single_best":
        return _no_single_best(claim, look)
    return _trend(claim, look)


def claim_cells(claim: Claim, table: CellTable) -> list[CellSummary]:
    """Every measured cell a claim may compare (what it needs more rounds of)."""
    if claim.kind == "untestable":
        return []
    if claim.kind == "trend":
        return [c for mode in claim.get("modes") for _, c in table.series(claim, mode)]
    modes: list[str] = []
    for key in ("candidate", "among", "better", "than"):
        value = claim.get(key)
        modes += [value] if isinstance(value, str) else list(value or [])
    placements = claim.get("placements") or [claim.get("placement")]
    found = [table.find(claim, m, p) for m in dict.fromkeys(modes) for p in placements]
    return [c for c in found if not isinstance(c, str)]


def decide(claim: Claim, table: CellTable, design: Design) -> Verdict:
    """The claim's verdict, replaying the looks in order: after the first look
    (``design.first_look`` rounds) and after every round since, the claim is tested
    with the look's spent error, and the first look that decides it is final."""
    if claim.kind == "untestable":
        return Verdict(claim, UNTESTABLE, str(claim.get("reason")))
    last = table.last_round(claim_cells(claim, table))
    if last == 0:
        outcome = _at_look(claim, _Look(table, design, 0))
        return Verdict(claim, outcome.verdict if outcome.verdict == UNTESTABLE else
                       INCONCLUSIVE, outcome.reason or "no measurements yet", outcome.evidence)
    if design.cap == 0:
        design = replace(design, first_look=last, cap=last)
    outcome = _Outcome(INCONCLUSIVE, "", [])
    first = min(design.first_look, last)
    for upto in range(first, last + 1):
        outcome = _at_look(claim, _Look(table, design, upto))
        if outcome.verdict != INCONCLUSIVE:
            break
    n = min((t.effect.n for t, _ in outcome.tests), default=None)
    evidence = outcome.evidence + [t.describe(o) for t, o in outcome.tests]
    return Verdict(claim, outcome.verdict, outcome.reason, evidence,
                   look=upto if outcome.verdict != UNTESTABLE else None, n=n,
                   pairs=[t.as_record(o) for t, o in outcome.tests])


def evaluate(claims: tuple[Claim, ...], cells: list[CellSummary],
             records: list[dict[str, Any]], design: Design | None = None,
             unmeasured: dict[str, str] | None = None) -> list[Verdict]:
    """Every claim's verdict from the run's records (see ``decide``); ``unmeasured``:
    suites the target could not run (suite -> why), whose claims are not testable."""
    table = CellTable(cells, records)
    design = design or Design()
    unmeasured = unmeasured or {}
    return [Verdict(claim, UNTESTABLE, f"{claim.get('suite')} is not measured on this "
                    f"target: {unmeasured[claim.get('suite')]}")
            if claim.get("suite") in unmeasured else decide(claim, table, design)
            for claim in claims]


def undecided_claims(claims: tuple[Claim, ...], cells: list[CellSummary],
                     records: list[dict[str, Any]], design: Design) -> dict[str, set[str]]:
    """The claims still undecided, each with the ids of the cells it compares: what
    the next round of a sequential study measures beyond the minimum."""
    table = CellTable(cells, records)
    return {claim.id: {c.cell_id for c in claim_cells(claim, table)} for claim in claims
            if decide(claim, table, design).verdict == INCONCLUSIVE}
