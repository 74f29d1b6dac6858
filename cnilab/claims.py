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

"Beats" means the mean is better in the metric's direction and Welch's t-test
says the difference is significant at 95 %. Verdicts: ``holds``, ``does not
hold`` (the opposite is significant), ``inconclusive`` (no significant
difference either way: more repetitions needed), ``not testable`` (with the
reason: missing cells, a claim about hardware the lab lacks, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnilab.errors import SpecError
from cnilab.stats import Comparison, spearman, welch
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
HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE = ("holds", "does not hold", "inconclusive",
                                          "not testable")


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


class _Cells:
    def __init__(self, cells: list[CellSummary], records: list[dict[str, Any]]) -> None:
        self.cells, self.records = cells, records

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

    def values(self, cell: CellSummary, metric: str) -> list[float]:
        return cell.values if metric == cell.metric else cell.values_of(metric, self.records)


def _fmt(values: list[float]) -> str:
    if not values:
        return "no values"
    mean = sum(values) / len(values)
    return f"{mean:.4g} (n={len(values)})"


def _beats(a: list[float], b: list[float], lower: bool) -> tuple[int, Comparison | None]:
    """+1: a significantly better than b; -1: significantly worse; 0: neither."""
    c = welch(a, b)
    if c is None or not c.significant():
        return 0, c
    better = c.mean_a < c.mean_b if lower else c.mean_a > c.mean_b
    return (1 if better else -1), c


def _pairs(claim: Claim, cells: _Cells, winners: list[str],
           losers: list[str]) -> Verdict:
    metric = claim.get("metric")
    lower = lower_is_better(metric)
    evidence: list[str] = []
    outcomes: list[int] = []
    for w in winners:
        for lo in losers:
            cw, cl = cells.find(claim, w), cells.find(claim, lo)
            if isinstance(cw, str) or isinstance(cl, str):
                return Verdict(claim, UNTESTABLE, cw if isinstance(cw, str) else str(cl))
            vw, vl = cells.values(cw, metric), cells.values(cl, metric)
            outcome, comp = _beats(vw, vl, lower)
            outcomes.append(outcome)
            p = f"p={comp.p_value:.3g}" if comp else "too few repetitions for a test"
            evidence.append(f"{w} {_fmt(vw)} vs {lo} {_fmt(vl)} {metric}: {p}")
    direction = "lower" if lower else "higher"
    if all(o == 1 for o in outcomes):
        return Verdict(claim, HOLDS, f"every comparison significant, {direction} is better",
                       evidence)
    if any(o == -1 for o in outcomes):
        return Verdict(claim, FAILS, "at least one comparison is significantly the other way",
                       evidence)
    return Verdict(claim, INCONCLUSIVE, "some differences are not significant at 95 %",
                   evidence)


def _no_single_best(claim: Claim, cells: _Cells) -> Verdict:
    metric, among = claim.get("metric"), list(claim.get("among"))
    lower = lower_is_better(metric)
    winners: dict[str, tuple[str, list[float]]] = {}
    evidence: list[str] = []
    for placement in claim.get("placements"):
        ranked: list[tuple[float, str, list[float]]] = []
        for mode in among:
            cell = cells.find(claim, mode, placement)
            if isinstance(cell, str):
                return Verdict(claim, UNTESTABLE, cell)
            vals = cells.values(cell, metric)
            ranked.append((sum(vals) / len(vals), mode, vals))
        ranked.sort(reverse=not lower)
        winners[placement] = (ranked[0][1], ranked[0][2])
        evidence.append(f"{placement}: best {ranked[0][1]} {_fmt(ranked[0][2])}, next "
                        f"{ranked[1][1]} {_fmt(ranked[1][2])} {metric}")
    names = {w for w, _ in winners.values()}
    if len(names) == 1:
        return Verdict(claim, FAILS, f"{names.pop()} is best at every placement", evidence)
    # each placement's winner must really beat the other placement's winner there
    significant = True
    for placement, (winner, _) in winners.items():
        for other, _ in winners.values():
            if other == winner:
                continue
            a, b = cells.find(claim, winner, placement), cells.find(claim, other, placement)
            assert not isinstance(a, str) and not isinstance(b, str)
            outcome, _ = _beats(cells.values(a, metric), cells.values(b, metric), lower)
            significant &= outcome == 1
    if significant:
        return Verdict(claim, HOLDS, "the best plugin differs between placements", evidence)
    return Verdict(claim, INCONCLUSIVE, "different winners, but not significantly", evidence)


def _trend(claim: Claim, cells: _Cells) -> Verdict:
    metric, key = claim.get("metric"), claim.get("sweep")
    decreasing = claim.get("direction") == "decreasing"
    base_condition = dict(claim.get("condition") or {})
    evidence: list[str] = []
    outcomes: list[int] = []
    for mode in claim.get("modes"):
        # the sweep's points: cells with the key (and the claim's other condition values),
        # plus the unconditioned cell, which is the 0 point
        series = sorted(
            ((int(c.condition.get(key, 0)), c) for c in cells.cells
             if c.matches(mode=mode, placement=claim.get("placement"),
                          suite=claim.get("suite"), params=claim.get("params"))
             and (not c.condition or (key in c.condition and all(
                 c.condition.get(k) == v for k, v in base_condition.items())))),
            key=lambda p: p[0])
        if len(series) < 2:
            return Verdict(claim, UNTESTABLE, f"fewer than 2 {key} values measured for {mode}")
        xs = [float(x) for x, _ in series]
        means = [sum(cells.values(c, metric)) / len(cells.values(c, metric)) for _, c in series]
        rho = spearman(xs, means)
        first = cells.values(series[0][1], metric)
        last = cells.values(series[-1][1], metric)
        outcome, comp = _beats(last, first, lower=decreasing)
        monotone = rho is None or (rho <= -0.8 if decreasing else rho >= 0.8)
        outcomes.append(outcome if monotone or outcome == -1 else 0)
        pts = ", ".join(f"{int(x)}: {m:.4g}" for x, m in zip(xs, means, strict=True))
        evidence.append(f"{mode} {metric} by {key}: {pts}; Spearman "
                        f"{'n/a' if rho is None else f'{rho:.2f}'}; first vs last "
                        f"{f'p={comp.p_value:.3g}' if comp else 'untested'}")
    word = "decreases" if decreasing else "increases"
    if all(o == 1 for o in outcomes):
        return Verdict(claim, HOLDS, f"{metric} {word} with {key} for every mode", evidence)
    if any(o == -1 for o in outcomes):
        return Verdict(claim, FAILS, f"{metric} significantly goes the other way", evidence)
    return Verdict(claim, INCONCLUSIVE, "no significant monotone change for every mode",
                   evidence)


def evaluate(claims: tuple[Claim, ...], cells: list[CellSummary],
             records: list[dict[str, Any]]) -> list[Verdict]:
    table = _Cells(cells, records)
    out: list[Verdict] = []
    for claim in claims:
        if claim.kind == "untestable":
            out.append(Verdict(claim, UNTESTABLE, str(claim.get("reason"))))
        elif claim.kind == "best":
            out.append(_pairs(claim, table, [claim.get("candidate")],
                              [m for m in claim.get("among") if m != claim.get("candidate")]))
        elif claim.kind == "order":
            out.append(_pairs(claim, table, list(claim.get("better")), list(claim.get("than"))))
        elif claim.kind == "no_single_best":
            out.append(_no_single_best(claim, table))
        else:
            out.append(_trend(claim, table))
    return out
