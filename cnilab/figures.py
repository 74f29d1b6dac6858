"""Presentation stage, figures: cell summaries in, PNG and SVG files out.

Every figure says what (metric and units), where (placement; lab or cluster)
and how much to trust it (95 % CI error bars), and stays readable in
greyscale (grey levels plus hatches, markers and line styles). A figure
without data is not drawn; the reason is returned for the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnilab.stats import summarize
from cnilab.summary import CellSummary

HATCHES = ["", "//", "..", "xx", "\\\\", "++", "--", "oo"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":"]
UNITS = {"throughput_gbps": "Gbit/s", "transactions_per_s": "transactions/s",
         "latency_mean_us": "µs", "latency_p99_us": "µs", "cpu_s_per_gbit": "CPU-s per Gbit",
         "cycles_per_packet": "cycles/packet", "cycles_per_mtu_packet": "cycles/packet",
         "all_ready_ms": "ms"}


@dataclass
class Figure:
    name: str
    title: str
    files: dict[str, Path]        # extension -> path
    drawn: bool
    reason: str = ""              # why not drawn


def _grey(i: int, n: int) -> str:
    return str(0.6 * i / max(1, n - 1)) if n > 1 else "0.3"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out_dir: Path, name: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for ext in ("png", "svg"):
        path = out_dir / f"{name}.{ext}"
        tmp = out_dir / f".{name}.tmp.{ext}"
        fig.savefig(tmp, dpi=120, format=ext)
        tmp.replace(path)
        files[ext] = path
    _pyplot().close(fig)
    return files


def _where(emulation: bool) -> str:
    return "netns lab (emulation)" if emulation else "cluster"


def _metric_values(cell: CellSummary, metric: str) -> tuple[float, float] | None:
    s = cell.summary if metric == cell.metric else cell.metrics.get(metric)
    if s is None:
        return None
    return s.mean, s.ci95_half_width or 0.0


def _plain(cells: list[CellSummary], suite: str) -> list[CellSummary]:
    """A suite's cells without a sweep condition (or at its 0 baseline)."""
    return [c for c in cells if c.suite == suite and not any(c.condition.values())]


def bars_by_placement(cells: list[CellSummary], suite: str, metrics: list[str],
                      placements: list[str], name: str, what: str, emulation: bool,
                      out_dir: Path, baseline: bool = False) -> Figure:
    """One panel per placement, one bar group per mode, one bar per metric."""
    title = f"{what} — {_where(emulation)}"
    chosen = [c for c in _plain(cells, suite) if c.placement in placements]
    if not chosen or not any(_metric_values(c, m) for c in chosen for m in metrics):
        return Figure(name, title, {}, False, f"no {suite} measurements of "
                      f"{', '.join(metrics)} at {', '.join(placements)}")
    plt = _pyplot()
    panels = [p for p in placements if any(c.placement == p for c in chosen)]
    modes = sorted({c.mode_key for c in chosen})
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 1.1 * len(modes) * len(panels)
                                                          * len(metrics)), 4.4), squeeze=False,
                             sharey=True)
    unit = UNITS.get(metrics[0], metrics[0])
    under = [c for c in _plain(cells, suite) if c.placement == "underlay"]
    for ax, placement in zip(axes[0], panels, strict=True):
        width = 0.8 / len(metrics)
        for mi, metric in enumerate(metrics):
            xs, ys, errs = [], [], []
            for xi, mode in enumerate(modes):
                match = [c for c in chosen if c.mode_key == mode and c.placement == placement]
                got = _metric_values(match[0], metric) if match else None
                if got is None:
                    continue
                xs.append(xi + mi * width)
                ys.append(got[0])
                errs.append(got[1])
            ax.bar(xs, ys, width=width, yerr=errs, capsize=3, color=_grey(mi, len(metrics)),
                   edgecolor="black", hatch=HATCHES[mi % len(HATCHES)],
                   label=metric if len(metrics) > 1 else None)
        if baseline and under:
            mean = summarize([c.summary.mean for c in under]).mean
            ax.axhline(mean, color="black", linestyle="--", linewidth=1,
                       label=f"underlay baseline {mean:.3g}")
        ax.set_xticks([i + width * (len(metrics) - 1) / 2 for i in range(len(modes))])
        ax.set_xticklabels(modes, rotation=30, ha="right", fontsize=8)
        ax.set_title(placement, fontsize=9)
        ax.set_ylabel(f"{unit}, mean ± 95 % CI")
        ax.grid(axis="y", linestyle=":", color="grey")
        if len(metrics) > 1 or (baseline and under):
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return Figure(name, title, _save(fig, out_dir, name), True)


def lines_over(cells: list[CellSummary], *, select: Callable[[CellSummary], bool],
               x_of: Callable[[CellSummary], float],
               series_of: Callable[[CellSummary], list[str]],
               metric: str, x_label: str, name: str, what: str, emulation: bool,
               out_dir: Path) -> Figure:
    """A metric against a swept value, one line (with CI bars) per series; a cell may belong
    to several series (the shared 0 baseline of every rule shape)."""
    title = f"{what} — {_where(emulation)}"
    chosen = [c for c in cells if select(c)]
    xs_all = {x_of(c) for c in chosen}
    if len(xs_all) < 2:
        return Figure(name, title, {}, False, f"fewer than two {x_label} values measured")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    series = sorted({name for c in chosen for name in series_of(c)})
    for i, label in enumerate(series):
        points = sorted(((x_of(c), c) for c in chosen if label in series_of(c)),
                        key=lambda p: p[0])
        got = [(x, _metric_values(c, metric)) for x, c in points]
        pts = [(x, v) for x, v in got if v is not None]
        if not pts:
            continue
        ax.errorbar([x for x, _ in pts], [v[0] for _, v in pts], yerr=[v[1] for _, v in pts],
                    label=label, color=_grey(i, len(series)), marker=MARKERS[i % len(MARKERS)],
                    linestyle=LINESTYLES[i % len(LINESTYLES)], capsize=3)
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"{UNITS.get(metric, metric)}, mean ± 95 % CI")
    ax.grid(linestyle=":", color="grey")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return Figure(name, title, _save(fig, out_dir, name), True)


def draw_all(cells: list[CellSummary], emulation: bool, out_dir: Path) -> list[Figure]:
    """Every figure of the study that this run has data for (and why not, for the rest)."""
    both = ["intra-host", "inter-host"]
    figures = [
        bars_by_placement(cells, "iperf3-tcp", ["throughput_gbps"], both, "throughput",
                          "TCP throughput (iperf3) per plugin/mode, Gbit/s", emulation,
                          out_dir, baseline=True),
        bars_by_placement(cells, "netperf-tcp-rr", ["latency_mean_us", "latency_p99_us"],
                          both, "latency", "TCP_RR round-trip latency (netperf), mean and "
                          "P99, µs", emulation, out_dir),
        bars_by_placement(cells, "iperf3-tcp", ["cpu_s_per_gbit"], both, "cpu",
                          "CPU cost per gigabit (/proc/stat: the machine, or both ends' "
                          "nodes), CPU-s/Gbit", emulation, out_dir),
        bars_by_placement(cells, "iperf3-tcp", ["cycles_per_mtu_packet"], both, "cpp",
                          "CPU cycles per MTU-sized packet (the study's CPP)", emulation,
                          out_dir),
    ]
    for suite in sorted({c.suite for c in cells if "policy_rules" in c.condition}):
        figures.append(lines_over(
            cells,
            select=_swept(cells, suite, "policy_rules"),
            x_of=lambda c: float(c.condition.get("policy_rules", 0)),
            series_of=_rule_series(cells),
            metric=_primary(cells, suite),
            x_label="filter rules on the forwarding path", name=f"policy-{suite}",
            what=f"{suite} vs iptables rules / ipset entries", emulation=emulation,
            out_dir=out_dir))
    for suite in sorted({c.suite for c in cells if "background_flows" in c.condition}):
        figures.append(lines_over(
            cells,
            select=_swept(cells, suite, "background_flows"),
            x_of=lambda c: float(c.condition.get("background_flows", 0)),
            series_of=lambda c: [f"{c.mode_key} {c.placement}"],
            metric=_primary(cells, suite), x_label="concurrent background flows (10 Mbit/s "
            "each unless stated)", name=f"background-{suite}",
            what=f"{suite} under background load", emulation=emulation, out_dir=out_dir))
    figures.append(lines_over(
        cells, select=lambda c: c.suite == "pod-startup",
        x_of=lambda c: float(c.params["pods"]), series_of=lambda c: [c.mode_key],
        metric="all_ready_ms", x_label="pods started together on one node",
        name="startup", what="Pod start-up: time until every pod is ready (lab: attached "
        "and programmed; cluster: its container started), ms", emulation=emulation,
        out_dir=out_dir))
    if not any(f.name.startswith("policy-") for f in figures):
        figures.append(Figure("policy", "throughput/latency vs rules", {}, False,
                              "this run has no policy_rules sweep"))
    if not any(f.name.startswith("background-") for f in figures):
        figures.append(Figure("background", "throughput vs background flows", {}, False,
                              "this run has no background_flows sweep"))
    return figures


def figure_for_claim(claim_suite: str | None, metric: str | None,
                     sweep: str | None) -> str:
    """The figure of ``draw_all`` that shows a claim's numbers (by suite, metric and
    sweep): kept beside ``draw_all`` so the names live in one module."""
    if sweep == "policy_rules":
        return f"policy-{claim_suite}"
    if sweep == "background_flows":
        return f"background-{claim_suite}"
    if claim_suite == "pod-startup":
        return "startup"
    if metric and ("latency" in metric):
        return "latency"
    if metric in ("cycles_per_packet", "cycles_per_mtu_packet"):
        return "cpp"
    if metric == "cpu_s_per_gbit":
        return "cpu"
    return "throughput"


def _rule_series(cells: list[CellSummary]) -> Callable[[CellSummary], list[str]]:
    """Series per mode, placement and rule shape; the 0-rules cell starts every shape."""
    shapes = sorted({str(c.condition["rule_shape"]) for c in cells
                     if "rule_shape" in c.condition}) or ["rules"]

    def series(cell: CellSummary) -> list[str]:
        own = cell.condition.get("rule_shape")
        return [f"{cell.mode_key} {cell.placement} {shape}" for shape in
                ([own] if own else shapes)]
    return series


def _swept(cells: list[CellSummary], suite: str,
           key: str) -> Callable[[CellSummary], bool]:
    """Cells of a sweep: those with ``key`` in their condition, plus the unconditioned cell
    with the same mode, placement and params, which is the sweep's 0 point."""
    swept = {(c.mode_key, c.placement, tuple(sorted(c.params.items()))) for c in cells
             if c.suite == suite and key in c.condition}

    def select(cell: CellSummary) -> bool:
        if cell.suite != suite:
            return False
        if key in cell.condition:
            return True
        return not cell.condition and (cell.mode_key, cell.placement,
                                       tuple(sorted(cell.params.items()))) in swept
    return select


def _primary(cells: list[CellSummary], suite: str) -> str:
    return next(c.metric for c in cells if c.suite == suite)
