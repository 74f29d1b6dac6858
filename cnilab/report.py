"""Presentation: a run directory in, ``report.md`` and figures out.

Reads only the run directory (manifest and results), so a report can be
regenerated anywhere from an archived run.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from cnilab.bench.placements import BASELINE, PLACEMENTS
from cnilab.bench.suites import get_suite
from cnilab.errors import InputError
from cnilab.rundir import RunDir, atomic_write_text
from cnilab.stats import Summary, summarize

TEMPLATES = Path(__file__).resolve().parent / "templates"
FIGURE_METRIC = "throughput_gbps"


@dataclass(frozen=True)
class Row:
    cni: str
    mode: str
    placement: str
    test: str
    metric: str
    summary: Summary
    ratio: float | None
    command: str


def _test_label(record: dict[str, Any]) -> str:
    params = {**record["cell"]["params"], **record["cell"].get("condition", {})}
    inner = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{record['cell']['suite']} ({inner})" if inner else record["cell"]["suite"]


def _command(record: dict[str, Any]) -> str:
    if "commands" in record:
        return shlex.join(record["commands"]["client"])
    return f"(no client: {record['cell']['suite']} starts pods through the target)"


def _mode(cell: dict[str, Any]) -> str:
    return str(cell["mode"]) + ("+policy" if cell.get("policy") else "")


def build_rows(records: list[dict[str, Any]]) -> list[Row]:
    """One row per cell: the statistics of its suite's primary metric over ok measurements."""
    values: dict[str, list[float]] = defaultdict(list)
    first: dict[str, dict[str, Any]] = {}
    for r in records:
        metric = get_suite(r["cell"]["suite"]).primary_metric
        if r.get("warmup") or r["status"] != "ok" or r["metrics"].get(metric) is None:
            continue
        values[r["cell_id"]].append(float(r["metrics"][metric]))
        first.setdefault(r["cell_id"], r)
    baselines: dict[tuple[str, str, str], float] = {}
    summaries = {cid: summarize(v) for cid, v in values.items()}
    for cid, rec in first.items():
        cell = rec["cell"]
        if cell["placement"] == BASELINE:
            baselines[(cell["cni"], _mode(cell), _test_label(rec))] = summaries[cid].mean
    order = list(PLACEMENTS)
    rows = []
    for cid, rec in first.items():
        cell = rec["cell"]
        label = _test_label(rec)
        base = baselines.get((cell["cni"], _mode(cell), label))
        ratio = summaries[cid].mean / base if base else None
        rows.append(Row(cell["cni"], _mode(cell), cell["placement"], label,
                        get_suite(cell["suite"]).primary_metric, summaries[cid], ratio,
                        _command(rec)))
    rows.sort(key=lambda r: (r.cni, r.mode, r.test, order.index(r.placement)
                             if r.placement in order else 99))
    return rows


def draw_throughput(rows: list[Row], run_id: str, emulation: bool, out: Path) -> None:
    """Bar chart: mean throughput per placement and mode, 95 % CI error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r.cni, r.mode, r.test) for r in rows})
    placements = [p for p in PLACEMENTS if any(r.placement == p for r in rows)]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(placements) * len(groups)), 4.2))
    width = 0.8 / max(1, len(groups))
    hatches = ["", "//", "..", "xx", "\\\\", "++"]
    for gi, group in enumerate(groups):
        xs, ys, errs = [], [], []
        for pi, placement in enumerate(placements):
            match = [r for r in rows if (r.cni, r.mode, r.test) == group and
                     r.placement == placement]
            if not match:
                continue
            s = match[0].summary
            xs.append(pi + gi * width)
            ys.append(s.mean)
            errs.append(s.ci95_half_width or 0.0)
        ax.bar(xs, ys, width=width, yerr=errs, capsize=4, color=str(0.35 + 0.4 * gi /
               max(1, len(groups))), edgecolor="black", hatch=hatches[gi % len(hatches)],
               label=f"{group[0]}/{group[1]}")
    ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(placements))])
    ax.set_xticklabels(placements)
    ax.set_ylabel("throughput (Gbit/s), mean ± 95 % CI")
    where = "netns lab (emulation)" if emulation else "cluster"
    ax.set_title(f"Throughput per placement — {where}\nrun {run_id}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", linestyle=":", color="grey")
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out)


def write_report(run_path: Path) -> Path:
    """Write ``report.md`` and ``throughput.png`` into the run directory; return the report."""
    run = RunDir.open(run_path)
    manifest = run.read_manifest()
    records = list(run.results())
    if not records:
        raise InputError(f"{run.results_path}: no measurements recorded yet")
    rows = build_rows(records)
    failures = [r for r in records if r["status"] != "ok"]
    figure = "throughput.png"
    throughput_rows = [r for r in rows if r.metric == FIGURE_METRIC]
    if throughput_rows:
        draw_throughput(throughput_rows, run.run_id, bool(manifest["target"]["emulation"]),
                        run.path / figure)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    text = env.get_template("report.md.j2").render(
        manifest=manifest, rows=rows, failures=failures,
        figure=figure if throughput_rows else None,
        counts={"ok": len(records) - len(failures), "failed": len(failures),
                "planned": run.read_state().get("planned", len(records))},
    )
    out = run.path / "report.md"
    atomic_write_text(out, text)
    return out
