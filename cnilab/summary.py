"""Statistics stage: records of a run directory in, one summary per cell out.

Pure functions over the records (``results.jsonl``); figures, claims and
reports all read these summaries, and ``summary.csv`` is their on-disk form.
"""

from __future__ import annotations

import csv
import io
import shlex
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cnilab.bench.placements import BASELINE, PLACEMENTS
from cnilab.bench.suites import get_suite
from cnilab.modes import record_mode_key
from cnilab.stats import Summary, summarize

# Metrics where a smaller value is better (everything else: larger is better).
_LOWER_IS_BETTER_MARKS = ("latency", "_us", "_ms", "cpu_", "cycles", "lost", "jitter",
                          "retransmits", "memory")


def lower_is_better(metric: str) -> bool:
    return any(mark in metric for mark in _LOWER_IS_BETTER_MARKS)


def mode_label(cell: dict[str, Any]) -> str:
    """The matrix key of a record's cell (``cni/mode``, ``+policy``, ``+offload-off``)."""
    return record_mode_key(cell)


@dataclass
class CellSummary:
    cell_id: str
    mode_key: str
    placement: str
    suite: str
    params: dict[str, Any]
    condition: dict[str, Any]
    metric: str                        # the suite's primary metric
    values: list[float]                # primary metric of every ok repetition, in order
    summary: Summary
    metrics: dict[str, Summary] = field(default_factory=dict)   # every numeric metric
    failed: int = 0
    ratio_to_baseline: float | None = None
    command: str = ""
    baseline_ratios: dict[str, float] = field(default_factory=dict)   # other metrics

    @property
    def test_label(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in sorted({**self.params,
                                                          **self.condition}.items()))
        return f"{self.suite} ({inner})" if inner else self.suite

    def matches(self, *, mode: str | None = None, placement: str | None = None,
                suite: str | None = None, params: dict[str, Any] | None = None,
                condition: dict[str, Any] | None = None) -> bool:
        """Whether this cell is the one a claim or figure names (None = any)."""
        return ((mode is None or self.mode_key == mode)
                and (placement is None or self.placement == placement)
                and (suite is None or self.suite == suite)
                and all(self.params.get(k) == v for k, v in (params or {}).items())
                and all(self.condition.get(k, 0) == v for k, v in (condition or {}).items()))

    def values_of(self, metric: str, records: list[dict[str, Any]]) -> list[float]:
        return [float(r["metrics"][metric]) for r in records
                if r["cell_id"] == self.cell_id and not r.get("warmup")
                and r["status"] == "ok" and isinstance(r["metrics"].get(metric), int | float)]


def _command(record: dict[str, Any]) -> str:
    if "commands" in record:
        return shlex.join(record["commands"]["client"])
    return f"(no client: {record['cell']['suite']} starts pods through the target)"


def summarize_cells(records: list[dict[str, Any]]) -> list[CellSummary]:
    """One summary per cell with at least one ok measurement, in a stable order
    (mode, test, placement as listed in PLACEMENTS); warm-ups never count."""
    measured = [r for r in records if not r.get("warmup")]
    ok: dict[str, list[dict[str, Any]]] = defaultdict(list)
    failed: dict[str, int] = defaultdict(int)
    for r in measured:
        if r["status"] == "ok":
            ok[r["cell_id"]].append(r)
        else:
            failed[r["cell_id"]] += 1
    cells: list[CellSummary] = []
    for cell_id, recs in ok.items():
        recs.sort(key=lambda r: r["repetition"])
        first = recs[0]
        cell = first["cell"]
        metric = get_suite(cell["suite"]).primary_metric
        values = [float(r["metrics"][metric]) for r in recs
                  if isinstance(r["metrics"].get(metric), int | float)]
        if not values:
            continue
        numeric: dict[str, list[float]] = defaultdict(list)
        for r in recs:
            for name, value in r["metrics"].items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    numeric[name].append(float(value))
        cells.append(CellSummary(
            cell_id=cell_id, mode_key=mode_label(cell), placement=cell["placement"],
            suite=cell["suite"], params=dict(cell["params"]),
            condition=dict(cell.get("condition", {})), metric=metric, values=values,
            summary=summarize(values),
            metrics={k: summarize(v) for k, v in sorted(numeric.items())},
            failed=failed.get(cell_id, 0), command=_command(first)))
    _attach_baselines(cells)
    order = list(PLACEMENTS)
    cells.sort(key=lambda c: (c.mode_key, c.test_label,
                              order.index(c.placement) if c.placement in order else 99))
    return cells


def _attach_baselines(cells: list[CellSummary]) -> None:
    """Ratio of each cell's mean to the same run's underlay cell of the same mode and test
    (its primary metric, and every other metric its suite reports)."""
    base = {(c.mode_key, c.test_label): c for c in cells if c.placement == BASELINE}
    for c in cells:
        under = base.get((c.mode_key, c.test_label))
        if under is None:
            continue
        mean = under.summary.mean
        c.ratio_to_baseline = c.summary.mean / mean if mean else None
        for metric in get_suite(c.suite).secondary_metrics:
            mine, theirs = c.metrics.get(metric), under.metrics.get(metric)
            if mine is not None and theirs is not None and theirs.mean:
                c.baseline_ratios[metric] = mine.mean / theirs.mean


CSV_COLUMNS = ["cell_id", "mode", "placement", "suite", "params", "condition", "metric", "n",
               "failed", "mean", "median", "stdev", "ci95_low", "ci95_high", "cv",
               "min", "max", "ratio_to_underlay"]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def summary_csv(cells: list[CellSummary]) -> str:
    """One row per cell and metric its suite reports (``Suite.summary_metrics``: the
    primary one first, then every other a study's claims compare), with its statistics."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in cells:
        for metric in get_suite(c.suite).summary_metrics:
            s = c.summary if metric == c.metric else c.metrics.get(metric)
            if s is None:
                continue
            writer.writerow([
                c.cell_id, c.mode_key, c.placement, c.suite,
                ";".join(f"{k}={v}" for k, v in sorted(c.params.items())),
                ";".join(f"{k}={v}" for k, v in sorted(c.condition.items())),
                metric, s.n, c.failed, _num(s.mean), _num(s.median), _num(s.stdev),
                _num(s.ci95_low), _num(s.ci95_high), _num(s.cv), _num(s.minimum),
                _num(s.maximum), _num(c.ratio_to_baseline if metric == c.metric else
                                      c.baseline_ratios.get(metric))])
    return out.getvalue()
