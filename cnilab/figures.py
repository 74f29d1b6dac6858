"""Presentation stage, figures: cell summaries in, PNG and SVG files out.

Every figure says what (a short title; the report's caption says the rest), where
(lab or cluster), which way is better (an arrow on the value axis) and how much to
trust it (95 % CI error bars). Colours come from the Okabe-Ito palette, which readers
with the common colour-vision deficiencies can tell apart, and hatches, markers and
line styles carry the same distinction so that a greyscale print still works. Each
figure also returns the numbers it plots, for the table the report folds beside it.
A figure without data is not drawn; the reason is returned for the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnilab.stats import summarize
from cnilab.summary import CellSummary, lower_is_better

# Okabe & Ito, "Color Universal Design" (2008): eight colours distinguishable with
# protanopia, deuteranopia and tritanopia.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000"]
HATCHES = ["", "//", "..", "xx", "\\\\", "++", "--", "oo"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":"]
UNITS = {"throughput_gbps": "Gbit/s", "transactions_per_s": "transactions/s",
         "latency_mean_us": "µs", "latency_p99_us": "µs", "cpu_s_per_gbit": "CPU-s per Gbit",
         "cycles_per_packet": "cycles/packet", "cycles_per_mtu_packet": "cycles/packet",
         "all_ready_ms": "ms", "agent_memory_mib": "MiB"}
# bars per panel beyond which a figure's panels are stacked rather than put side by side
_SIDE_BY_SIDE_BARS = 16
# how a mode's encapsulation (manifest ``modes``) groups it on the value axis
OVERLAY, NATIVE = "overlay", "native routing"


@dataclass
class Figure:
    name: str
    title: str
    files: dict[str, Path]        # extension -> path
    drawn: bool
    reason: str = ""              # why not drawn
    caption: str = ""             # the longer account, under the figure in the report
    columns: list[str] = field(default_factory=list)   # the plotted numbers, as a table
    rows: list[list[str]] = field(default_factory=list)


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
        fig.savefig(tmp, dpi=110, format=ext)
        tmp.replace(path)
        files[ext] = path
    _pyplot().close(fig)
    return files


def _where(emulation: bool) -> str:
    return "netns lab (emulation)" if emulation else "cluster"


def value_label(metric: str) -> str:
    """The value axis: unit, what the bars are, and which way is better."""
    better = "↓ lower is better" if lower_is_better(metric) else "↑ higher is better"
    return f"{UNITS.get(metric, metric)}, mean ± 95 % CI\n{better}"


def _metric_values(cell: CellSummary, metric: str) -> tuple[float, float, int] | None:
    s = cell.summary if metric == cell.metric else cell.metrics.get(metric)
    if s is None:
        return None
    return s.mean, s.ci95_half_width or 0.0, s.n


def _num(value: float) -> str:
    return f"{value:.4g}"


def _plain(cells: list[CellSummary], suite: str) -> list[CellSummary]:
    """A suite's cells without a sweep condition (or at its 0 baseline)."""
    return [c for c in cells if c.suite == suite and not any(c.condition.values())]


def grouped_modes(modes: set[str], groups: dict[str, str]) -> list[tuple[str, list[str]]]:
    """Modes in display order: overlays together, then native routing, then modes of no
    known group; sorted by name within each."""
    order = [OVERLAY, NATIVE, ""]
    out: list[tuple[str, list[str]]] = []
    for group in order:
        members = sorted(m for m in modes if groups.get(m, "") == group)
        if members:
            out.append((group, members))
    return out


def _layout(panels: int, bars: int) -> tuple[int, int, tuple[float, float]]:
    """(rows, columns, size in inches): panels side by side while they stay readable,
    else stacked, keeping the aspect near 2:1 at most whatever the number of modes."""
    if panels * bars <= _SIDE_BY_SIDE_BARS:
        width = min(11.0, max(6.0, 0.55 * panels * bars + 2.5))
        return 1, panels, (width, 4.2)
    width = min(11.0, max(6.0, 0.5 * bars + 2.5))
    return panels, 1, (width, 3.3 * panels + 0.6)


def bars_by_placement(cells: list[CellSummary], suite: str, metrics: list[str],
                      placements: list[str], name: str, title: str, caption: str,
                      emulation: bool, out_dir: Path, groups: dict[str, str] | None = None,
                      baseline: bool = False) -> Figure:
    """One panel per placement, one bar group per mode (overlays apart from native
    routing), one bar per metric."""
    groups = groups or {}
    full_title = f"{title} — {_where(emulation)}"
    chosen = [c for c in _plain(cells, suite) if c.placement in placements]
    if not chosen or not any(_metric_values(c, m) for c in chosen for m in metrics):
        return Figure(name, full_title, {}, False, f"no {suite} measurements of "
                      f"{', '.join(metrics)} at {', '.join(placements)}", caption)
    plt = _pyplot()
    panels = [p for p in placements if any(c.placement == p for c in chosen)]
    ordered = grouped_modes({c.mode_key for c in chosen}, groups)
    slots: list[tuple[float, str, str]] = []     # x, mode, group
    x = 0.0
    for group, members in ordered:
        for mode in members:
            slots.append((x, mode, group))
            x += 1.0
        x += 0.5                                  # a gap between groups
    colour_of = {group: PALETTE[i % len(PALETTE)] for i, (group, _) in enumerate(ordered)}
    nrows, ncols, size = _layout(len(panels), len(slots) * len(metrics))
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, sharey=True)
    rows: list[list[str]] = []
    under = [c for c in _plain(cells, suite) if c.placement == "underlay"]
    width = 0.8 / len(metrics)
    for ax, placement in zip(axes.flat, panels, strict=True):
        for mi, metric in enumerate(metrics):
            for x, mode, group in slots:
                match = [c for c in chosen if c.mode_key == mode and c.placement == placement]
                got = _metric_values(match[0], metric) if match else None
                if got is None:
                    continue
                ax.bar(x + mi * width, got[0], width=width, yerr=got[1], capsize=3,
                       color=colour_of[group], alpha=1.0 if mi == 0 else 0.55, edgecolor="black",
                       hatch=HATCHES[mi % len(HATCHES)])
                rows.append([mode, group or "-", placement, metric, _num(got[0]),
                             _num(got[1]), str(got[2])])
        if baseline and under:
            mean = summarize([c.summary.mean for c in under]).mean
            ax.axhline(mean, color="black", linestyle="--", linewidth=1)
            rows.append(["underlay (no CNI)", "-", "underlay", metrics[0], _num(mean), "-",
                         str(len(under))])
        ax.set_xticks([x + width * (len(metrics) - 1) / 2 for x, _, _ in slots])
        ax.set_xticklabels([mode for _, mode, _ in slots], rotation=30, ha="right",
                           fontsize=9)
        ax.set_title(placement, fontsize=10)
        ax.set_ylabel(value_label(metrics[0]), fontsize=9)
        ax.grid(axis="y", linestyle=":", color="grey")
        ax.set_axisbelow(True)
    legend = _bar_legend(fig, colour_of, metrics, baseline and bool(under))
    fig.suptitle(full_title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06 if legend else 0, 1, 1))
    return Figure(name, full_title, _save(fig, out_dir, name), True, "", caption,
                  ["mode", "group", "placement", "metric", "mean", "± 95 % CI", "n"], rows)


def _bar_legend(fig: Any, colour_of: dict[str, str], metrics: list[str],
                baseline: bool) -> bool:
    """One legend under the panels, never over the data: groups by colour, metrics by
    hatch, the underlay line. Whether there was anything to show."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Patch(facecolor=colour, edgecolor="black", label=group)
                          for group, colour in colour_of.items() if group]
    if len(metrics) > 1:
        handles += [Patch(facecolor="white", edgecolor="black", hatch=HATCHES[i],
                          label=metric) for i, metric in enumerate(metrics)]
    if baseline:
        handles.append(Line2D([], [], color="black", linestyle="--",
                              label="underlay baseline (no CNI)"))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4),
                   fontsize=8, frameon=False)
    return bool(handles)


def _ticks(ax: Any, xs: list[float]) -> None:
    """Ticks at the measured values when there are few (no 1.5 pods), integers else."""
    from matplotlib.ticker import MaxNLocator

    if len(xs) <= 6:
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:g}" for x in xs], fontsize=9)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def lines_over(cells: list[CellSummary], *, select: Callable[[CellSummary], bool],
               x_of: Callable[[CellSummary], float],
               series_of: Callable[[CellSummary], list[str]],
               metric: str, x_label: str, name: str, title: str, caption: str,
               emulation: bool, out_dir: Path,
               panel_of: Callable[[CellSummary], str] | None = None) -> Figure:
    """A metric against a swept value, one line (with CI bars) per series, in small
    multiples (one panel per ``panel_of``) so that no panel carries more than a handful
    of lines; a cell may belong to several series (the shared 0 baseline of every rule
    shape). Series keep one style across panels and share one legend under them."""
    full_title = f"{title} — {_where(emulation)}"
    chosen = [c for c in cells if select(c)]
    xs_all = sorted({x_of(c) for c in chosen})
    if len(xs_all) < 2:
        return Figure(name, full_title, {}, False, f"fewer than two {x_label} values "
                      "measured", caption)
    panel = panel_of or (lambda _c: "")
    panels = sorted({panel(c) for c in chosen})
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    plt = _pyplot()
    size = (7.0, 4.4) if len(panels) == 1 else (2.9 * ncols + 1.2, 2.6 * nrows + 1.3)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, sharex=True,
                             sharey=True)
    series = sorted({s for c in chosen for s in series_of(c)})
    style = {label: i for i, label in enumerate(series)}
    rows: list[list[str]] = []
    drawn: set[str] = set()
    for ax, name_of_panel in zip(axes.flat, panels, strict=False):
        here = [c for c in chosen if panel(c) == name_of_panel]
        for label in series:
            points = sorted(((x_of(c), c) for c in here if label in series_of(c)),
                            key=lambda p: p[0])
            pts = [(x, v) for x, c in points if (v := _metric_values(c, metric))]
            if not pts:
                continue
            i = style[label]
            ax.errorbar([x for x, _ in pts], [v[0] for _, v in pts],
                        yerr=[v[1] for _, v in pts], label=label,
                        color=PALETTE[i % len(PALETTE)], marker=MARKERS[i % len(MARKERS)],
                        linestyle=LINESTYLES[i % len(LINESTYLES)], capsize=3)
            drawn.add(label)
            rows += [[name_of_panel or "-", label, f"{x:g}", _num(v[0]), _num(v[1]), str(v[2])]
                     for x, v in pts]
        if name_of_panel:
            ax.set_title(name_of_panel, fontsize=9)
        _ticks(ax, xs_all)
        ax.grid(linestyle=":", color="grey")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(value_label(metric), fontsize=8 if len(panels) > 1 else 9)
    for ax in axes[-1, :]:
        ax.set_xlabel(x_label, fontsize=8 if len(panels) > 1 else 9)
    handles, labels = [], []
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    legend_rows = math.ceil(len(labels) / 3)
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8,
               frameon=False)
    fig.suptitle(full_title, fontsize=11)
    bottom = min(0.4, (0.3 + 0.22 * legend_rows) / size[1])
    fig.tight_layout(rect=(0, bottom, 1, 1))
    columns = ["panel", "series", x_label, "mean", "± 95 % CI", "n"]
    return Figure(name, full_title, _save(fig, out_dir, name), True, "", caption, columns,
                  rows)


def mode_groups(modes: dict[str, Any]) -> dict[str, str]:
    """Overlay or native routing per mode key, from the manifest's ``modes`` record."""
    return {key: (NATIVE if str(record.get("encapsulation")) == "none" else OVERLAY)
            for key, record in modes.items() if isinstance(record, dict)}


def draw_all(cells: list[CellSummary], emulation: bool, out_dir: Path,
             groups: dict[str, str] | None = None) -> list[Figure]:
    """Every figure of the study that this run has data for (and why not, for the rest)."""
    both = ["intra-host", "inter-host"]
    bars: dict[str, Any] = {"emulation": emulation, "out_dir": out_dir, "groups": groups}
    figures = [
        bars_by_placement(cells, "iperf3-tcp", ["throughput_gbps"], both, "throughput",
                          "TCP throughput (iperf3)", "TCP throughput of one iperf3 stream "
                          "per plugin/mode, Gbit/s; the dashed line is the underlay without "
                          "a CNI.", baseline=True, **bars),
        bars_by_placement(cells, "netperf-tcp-rr", ["latency_mean_us", "latency_p99_us"],
                          both, "latency", "TCP_RR round-trip latency (netperf)",
                          "Round-trip latency of netperf TCP_RR, mean (solid) and 99th "
                          "percentile (hatched), µs.", **bars),
        bars_by_placement(cells, "iperf3-tcp", ["cpu_s_per_gbit"], both, "cpu",
                          "CPU cost per gigabit", "CPU seconds per gigabit moved, from "
                          "/proc/stat: the whole machine on the lab, both ends' nodes on a "
                          "cluster.", **bars),
        bars_by_placement(cells, "iperf3-tcp", ["cycles_per_mtu_packet"], both, "cpp",
                          "CPU cycles per packet (CPP)", "CPU cycles per MTU-sized packet, "
                          "the study's CPP: busy cycles over the bytes moved in wire-sized "
                          "packets.", **bars),
        bars_by_placement(cells, "agent-memory", ["agent_memory_mib"], ["node"], "memory",
                          "CNI agent memory", "Working-set memory of each plugin's agent "
                          "pods per node (kubelet Summary API), MiB.", **bars),
    ]
    for suite in sorted({c.suite for c in cells if "policy_rules" in c.condition}):
        figures.append(lines_over(
            cells,
            select=_swept(cells, suite, "policy_rules"),
            x_of=lambda c: float(c.condition.get("policy_rules", 0)),
            series_of=_rule_series(cells), panel_of=lambda c: c.mode_key,
            metric=_primary(cells, suite),
            x_label="filter rules on the path", name=f"policy-{suite}",
            title=f"{suite} vs filter rules", caption=f"{suite} against the number of "
            "iptables rules (or ipset entries) on the forwarding path, one panel per "
            "plugin/mode, one line per placement and rule shape.", emulation=emulation,
            out_dir=out_dir))
    for suite in sorted({c.suite for c in cells if "background_flows" in c.condition}):
        figures.append(lines_over(
            cells,
            select=_swept(cells, suite, "background_flows"),
            x_of=lambda c: float(c.condition.get("background_flows", 0)),
            series_of=lambda c: [c.mode_key], panel_of=lambda c: c.placement,
            metric=_primary(cells, suite), x_label="background flows",
            name=f"background-{suite}", title=f"{suite} under background load",
            caption=f"{suite} against the number of concurrent background flows (10 Mbit/s "
            "each unless the spec says otherwise), one panel per placement.",
            emulation=emulation, out_dir=out_dir))
    figures.append(lines_over(
        cells, select=lambda c: c.suite == "pod-startup",
        x_of=lambda c: float(c.params["pods"]), series_of=lambda c: [c.mode_key],
        metric="all_ready_ms", x_label="pods started together on one node",
        name="startup", title="Pod start-up", caption="Time until every pod started "
        "together is ready, ms (lab: attached and programmed; cluster: its container "
        "started).", emulation=emulation, out_dir=out_dir))
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
    if claim_suite == "agent-memory":
        return "memory"
    if metric and ("latency" in metric):
        return "latency"
    if metric in ("cycles_per_packet", "cycles_per_mtu_packet"):
        return "cpp"
    if metric == "cpu_s_per_gbit":
        return "cpu"
    return "throughput"


def _rule_series(cells: list[CellSummary]) -> Callable[[CellSummary], list[str]]:
    """Series per placement and rule shape (the panel is the mode); the 0-rules cell
    starts every shape."""
    shapes = sorted({str(c.condition["rule_shape"]) for c in cells
                     if "rule_shape" in c.condition}) or ["rules"]

    def series(cell: CellSummary) -> list[str]:
        own = cell.condition.get("rule_shape")
        return [f"{cell.placement} {shape}" for shape in ([own] if own else shapes)]
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
