"""The numbers a study's paper reports, next to the same comparison measured here.

A verdict says whether a claim holds; it does not say whether the magnitudes agree.
A spec's ``paper_values`` list encodes what the paper reports as comparisons
between two of the spec's modes (a ratio ``mode / vs`` or a difference
``mode - vs`` of one metric in one cell), each naming where in the paper it comes
from and whether it was read approximately from a figure. Comparisons between
modes, because that is what a testbed's numbers and an emulation's can share:
absolute Gbit/s or cycles depend on the machine.

This module validates that list (FILE:LINE errors, like the claims) and computes our
value of each comparison from a run's records: paired by round when both cells were
measured in the same rounds, as the claims are, with a 95 % interval.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from cnilab.claims import CellTable, Claim
from cnilab.decisions import paired_effect, unpaired_effect
from cnilab.errors import SpecError
from cnilab.summary import CellSummary
from cnilab.yamlpos import PosDict, PosList, line_of

COMPARES = ("ratio", "difference")
REQUIRED = {"id", "says", "where", "compare", "value", "mode", "vs", "metric", "suite",
            "placement"}
OPTIONAL = {"claim", "approximate", "unit", "params", "condition"}
LEVEL = 0.95


@dataclass(frozen=True)
class PaperValue:
    id: str
    says: str                 # what the paper reports, in its terms
    where: str                # figure, table or section of the paper
    compare: str              # ratio (mode / vs) or difference (mode - vs)
    low: float                # the paper's value, or its range when read approximately
    high: float
    mode: str
    vs: str
    claim: str = ""
    approximate: bool = False
    unit: str = ""
    cell: dict[str, Any] = field(default_factory=dict)   # metric, suite, placement, params

    def as_claim(self) -> Claim:
        """The cell lookup the claims use, for this comparison's two cells."""
        return Claim(self.id, self.says, self.where, "order", dict(self.cell))

    def paper_text(self) -> str:
        about = "~" if self.approximate else ""
        if math.isinf(self.high):
            return f">= {about}{_shown(self.compare, _number(self.low), self.unit)}"
        if math.isinf(self.low):
            return f"<= {about}{_shown(self.compare, _number(self.high), self.unit)}"
        if self.low == self.high:
            return about + _shown(self.compare, _number(self.low), self.unit)
        return (f"{about}{_shown(self.compare, _number(self.low), self.unit)} to "
                f"{_shown(self.compare, _number(self.high), self.unit)}")


@dataclass
class Comparison:
    """Our value of one paper comparison, and how the two relate."""

    value: PaperValue
    ours: float | None = None
    interval: tuple[float, float] | None = None
    n: int = 0
    paired: bool = False
    reading: str = ""         # how ours relates to the paper's value (or why there is none)

    def ours_text(self) -> str:
        if self.ours is None or self.interval is None:
            return "not measured"
        lo, hi = self.interval
        unit = self.value.unit
        return (f"{_shown(self.value.compare, _number(self.ours), unit)} "
                f"[{_number(lo)}, {_number(hi)}] (n={self.n})")

    def as_record(self) -> dict[str, Any]:
        v = self.value
        return {"id": v.id, "claim": v.claim or None, "says": v.says, "where": v.where,
                "approximate": v.approximate, "compare": v.compare, "mode": v.mode,
                "vs": v.vs, **v.cell, "unit": v.unit or None,
                "paper": [None if math.isinf(x) else x for x in (v.low, v.high)],
                "paper_text": v.paper_text(), "ours": self.ours,
                "ours_interval": list(self.interval) if self.interval else None,
                "level": LEVEL, "n": self.n, "paired": self.paired, "reading": self.reading}


def _number(x: float) -> str:
    return f"{x:.3g}"


def _shown(compare: str, value: str, unit: str) -> str:
    if compare == "ratio":
        return f"x{value}"
    return f"{'' if value.startswith('-') else '+'}{value}{' ' + unit if unit else ''}"


# ---------------------------------------------------------------- the spec's list


def parse_paper_values(value: Any, where: Any, path: str, mode_keys: set[str],
                       claim_ids: set[str]) -> tuple[PaperValue, ...]:
    """Validate a spec's ``paper_values`` list (one FILE:LINE error for the first problem)."""
    if not isinstance(value, PosList):
        raise SpecError(path, line_of(where, "paper_values"), "'paper_values' must be a list")
    found: list[PaperValue] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        name = f"paper_values[{i}]"
        if not isinstance(item, PosDict):
            raise SpecError(path, line_of(value, i), f"'{name}' must be a mapping")
        for key in item:
            if key not in REQUIRED | OPTIONAL:
                raise SpecError(path, line_of(item, key), f"unknown key '{key}' in {name} "
                                f"(allowed: {', '.join(sorted(REQUIRED | OPTIONAL))})")
        for key in sorted(REQUIRED):
            if key not in item:
                raise SpecError(path, line_of(item), f"'{name}' is missing '{key}'")
        for key in (REQUIRED | OPTIONAL) - {"value", "approximate", "params", "condition"}:
            if key in item and not isinstance(item[key], str):
                raise SpecError(path, line_of(item, key), f"'{name}.{key}' must be text")
        if item["id"] in seen:
            raise SpecError(path, line_of(item, "id"), f"{name}: id '{item['id']}' repeated")
        seen.add(item["id"])
        if item["compare"] not in COMPARES:
            raise SpecError(path, line_of(item, "compare"), f"'{name}.compare' must be "
                            f"{' or '.join(COMPARES)}, got {item['compare']!r}")
        for key in ("mode", "vs"):
            if item[key] not in mode_keys:
                raise SpecError(path, line_of(item, key), f"'{name}.{key}': {item[key]!r} is "
                                "not in the matrix (" + ", ".join(sorted(mode_keys)) + ")")
        if "claim" in item and item["claim"] not in claim_ids:
            raise SpecError(path, line_of(item, "claim"), f"'{name}.claim': "
                            f"{item['claim']!r} is not a claim id of this spec")
        approximate = item.get("approximate", False)
        if not isinstance(approximate, bool):
            raise SpecError(path, line_of(item, "approximate"),
                            f"'{name}.approximate' must be true or false")
        low, high = _value(item, name, path)
        if item["compare"] == "ratio" and low <= 0:
            raise SpecError(path, line_of(item, "value"),
                            f"'{name}.value': a ratio must be above 0, got {low}")
        cell: dict[str, Any] = {k: item[k] for k in ("metric", "suite", "placement")}
        for key in ("params", "condition"):
            if key in item:
                if not isinstance(item[key], PosDict):
                    raise SpecError(path, line_of(item, key), f"'{name}.{key}' must be a mapping")
                cell[key] = dict(item[key])
        found.append(PaperValue(
            str(item["id"]), str(item["says"]), str(item["where"]), str(item["compare"]),
            low, high, str(item["mode"]), str(item["vs"]), str(item.get("claim", "")),
            approximate, str(item.get("unit", "")), cell))
    return tuple(found)


def _value(item: PosDict, name: str, path: str) -> tuple[float, float]:
    """``value: X`` or ``value: [LOW, HIGH]`` (a range, e.g. read from a figure)."""
    raw = item["value"]
    numbers = list(raw) if isinstance(raw, PosList) else [raw]
    if not 1 <= len(numbers) <= 2 or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and not math.isnan(x)
            for x in numbers) or (len(numbers) == 1 and math.isinf(numbers[0])):
        raise SpecError(path, line_of(item, "value"), f"'{name}.value' must be a number or "
                        f"[low, high] (.inf for an open end), got {str(raw)[:80]}")
    low, high = float(min(numbers)), float(max(numbers))
    if math.isinf(low) and math.isinf(high):
        raise SpecError(path, line_of(item, "value"), f"'{name}.value' needs a finite end")
    return low, high


# ---------------------------------------------------------------- our side


def compare(values: tuple[PaperValue, ...], cells: list[CellSummary],
            records: list[dict[str, Any]],
            unmeasured: dict[str, str] | None = None) -> list[Comparison]:
    """Our value of each of the paper's comparisons, from a run's records; ``unmeasured``:
    suites the target could not run (suite -> why)."""
    table = CellTable(cells, records)
    out = []
    for value in values:
        suite = value.cell["suite"]
        if suite in (unmeasured or {}):
            out.append(Comparison(value, reading=f"{suite} is not measured on this target: "
                                  f"{(unmeasured or {})[suite]}"))
        else:
            out.append(_compare_one(value, table))
    return out


def _compare_one(value: PaperValue, table: CellTable) -> Comparison:
    out = Comparison(value)
    claim = value.as_claim()
    cell_a, cell_b = table.find(claim, value.mode), table.find(claim, value.vs)
    if isinstance(cell_a, str) or isinstance(cell_b, str):
        out.reading = cell_a if isinstance(cell_a, str) else str(cell_b)
        return out
    metric = value.cell["metric"]
    last = table.last_round([cell_a, cell_b])
    a, b = table.rounds(cell_a, metric, last), table.rounds(cell_b, metric, last)
    if value.compare == "ratio":
        _ratio(out, a, b)
    else:
        _difference(out, a, b)
    if out.interval is not None:
        out.reading = reading(value, out.interval)
    return out


def _ratio(out: Comparison, a: dict[int, float], b: dict[int, float]) -> None:
    effect = paired_effect(a, b)
    if isinstance(effect, str):
        effect = unpaired_effect(list(a.values()), list(b.values()))
    if isinstance(effect, str):
        out.reading = effect
        return
    out.ours, out.n, out.paired = effect.ratio, effect.n, effect.paired
    out.interval = effect.ratio_interval((1 - LEVEL) / 2)


def _difference(out: Comparison, a: dict[int, float], b: dict[int, float]) -> None:
    rounds = sorted(a.keys() & b.keys())
    if len(rounds) >= 2:
        diffs = [a[r] - b[r] for r in rounds]
        mean, se, dof = (statistics.fmean(diffs),
                         statistics.stdev(diffs) / math.sqrt(len(diffs)), len(diffs) - 1.0)
        out.paired, out.n = True, len(diffs)
    elif len(a) >= 2 and len(b) >= 2:
        va, vb = statistics.variance(a.values()) / len(a), statistics.variance(b.values()) / len(b)
        mean = statistics.fmean(a.values()) - statistics.fmean(b.values())
        se = math.sqrt(va + vb)
        dof = ((va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
               if va + vb > 0 else len(a) + len(b) - 2.0)
        out.n = min(len(a), len(b))
    else:
        out.reading = f"n = {len(a)} and {len(b)}; an interval needs 2 of each"
        return
    from scipy import special  # here: importing scipy costs ~0.5 s

    q = float(special.stdtrit(dof, 1 - (1 - LEVEL) / 2)) * se if se > 0 else 0.0
    out.ours, out.interval = mean, (mean - q, mean + q)


def reading(value: PaperValue, interval: tuple[float, float]) -> str:
    """How our interval relates to the paper's value: the direction first (is the
    difference on the paper's side of 'no difference'?), then the magnitude."""
    neutral = 1.0 if value.compare == "ratio" else 0.0
    lo, hi = interval
    paper_side = 1 if value.low > neutral else -1 if value.high < neutral else 0
    ours_side = 1 if lo > neutral else -1 if hi < neutral else 0
    if paper_side and ours_side == -paper_side:
        return "opposite direction"
    if hi >= value.low and lo <= value.high:
        return "agrees (our interval meets the paper's value)"
    if not ours_side:
        return "no clear difference here; the paper's lies outside our interval"
    where = "smaller" if (hi < value.low) == (paper_side >= 0) else "larger"
    return f"same direction, {where} here"
