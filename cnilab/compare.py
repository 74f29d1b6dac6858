"""``cnilab compare RUN_A RUN_B [...]``: runs side by side, cell by cell.

For every cell two runs share, the means with their 95 % intervals, the ratio of run B
to run A with its interval (Welch's t on the logarithms, as the claims' unpaired
comparisons) and whether the difference is significant. Cells match on mode,
placement, suite, parameters and sweep condition, not on the test's duration: a quick
run and a full one compare (the durations are listed among the differences). Runs on
different kinds of target (the netns lab and a cluster) are compared as each cell's
ratio to its own run's underlay, since absolute numbers of an emulation and of a testbed
are not the same quantity. What differs between the runs' manifests and might matter
(kernel, CPU, tool versions, pin profile, target, cnilab commit) is listed first.

Reads run directories only; a bundle is checked with ``cnilab verify`` and unpacked.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnilab.decisions import Effect, unpaired_effect
from cnilab.errors import InputError
from cnilab.rundir import RunDir
from cnilab.summary import CellSummary, lower_is_better, summarize_cells

IGNORED_PARAMS = ("duration_s", "omit_s")   # how long a test ran, not what it measured
LEVEL = 0.95


@dataclass
class LoadedRun:
    path: Path
    manifest: dict[str, Any]
    cells: dict[tuple[Any, ...], CellSummary]

    @property
    def label(self) -> str:
        return self.path.name


def match_key(cell: CellSummary) -> tuple[Any, ...]:
    params = tuple(sorted((k, str(v)) for k, v in cell.params.items()
                          if k not in IGNORED_PARAMS))
    condition = tuple(sorted((k, str(v)) for k, v in cell.condition.items()))
    return (cell.mode_key, cell.placement, cell.suite, params, condition)


def load_run(path: Path) -> LoadedRun:
    if path.is_file():
        raise InputError(f"{path}: a file; compare takes run directories (check a bundle "
                         "with `cnilab verify`, then unpack it with tar -xzf)")
    run = RunDir.open(path)
    records = list(run.results())
    if not records:
        raise InputError(f"{run.results_path}: no measurements recorded")
    cells = summarize_cells(records)
    return LoadedRun(path, run.read_manifest(), {match_key(c): c for c in cells})


@dataclass
class Row:
    key: tuple[Any, ...]
    a: CellSummary
    b: CellSummary
    scale_a: float          # divisor of A's values (its underlay mean when normalised)
    scale_b: float
    effect: Effect | str

    @property
    def label(self) -> str:
        mode, placement, suite, params, condition = self.key
        inner = ", ".join(f"{k}={v}" for k, v in (*params, *condition))
        return f"{mode} {placement} {suite}" + (f" ({inner})" if inner else "")

    def interval(self) -> tuple[float, float] | None:
        if isinstance(self.effect, str):
            return None
        return self.effect.ratio_interval((1 - LEVEL) / 2)

    def significant(self) -> bool | None:
        interval = self.interval()
        if interval is None:
            return None
        return interval[0] > 1 or interval[1] < 1

    def as_record(self) -> dict[str, Any]:
        interval = self.interval()
        return {"cell": self.label, "metric": self.a.metric,
                "a_mean": self.a.summary.mean, "b_mean": self.b.summary.mean,
                "normalised_to_underlay": self.scale_a != 1.0 or self.scale_b != 1.0,
                "ratio": None if isinstance(self.effect, str) else self.effect.ratio,
                "interval": list(interval) if interval else None,
                "significant": self.significant(),
                "why_no_test": self.effect if isinstance(self.effect, str) else None}


def _underlay(run: LoadedRun, cell: CellSummary) -> float | None:
    key = list(match_key(cell))
    key[1] = "underlay"
    base = run.cells.get(tuple(key))
    return base.summary.mean if base is not None and base.summary.mean else None


def compare_pair(a: LoadedRun, b: LoadedRun) -> tuple[list[Row], bool]:
    """Rows for the cells both runs have; whether they were normalised to the underlay."""
    normalise = (a.manifest.get("target", {}).get("kind") != b.manifest.get("target", {}).get(
        "kind"))
    rows = []
    for key in sorted(set(a.cells) & set(b.cells), key=str):
        ca, cb = a.cells[key], b.cells[key]
        scale_a = scale_b = 1.0
        if normalise:
            if ca.placement == "underlay":
                continue
            ua, ub = _underlay(a, ca), _underlay(b, cb)
            if ua is None or ub is None:
                continue
            scale_a, scale_b = ua, ub
        effect = unpaired_effect([v / scale_b for v in cb.values],
                                 [v / scale_a for v in ca.values])
        rows.append(Row(key, ca, cb, scale_a, scale_b, effect))
    return rows, normalise


def differences(a: LoadedRun, b: LoadedRun) -> list[str]:
    """What differs between two runs' manifests and may move the numbers."""
    def get(m: dict[str, Any], *path: str) -> Any:
        for part in path:
            m = m.get(part, {}) if isinstance(m, dict) else {}
        return m if m != {} else None

    found = []
    for what, path in (("target", ("target", "kind")), ("emulation", ("target", "emulation")),
                       ("pin profile", ("target", "profile")),
                       ("kernel", ("machine", "kernel")), ("CPU", ("machine", "cpu_model")),
                       ("cores", ("machine", "cores")),
                       ("iptables backend", ("iptables_backend",)),
                       ("cnilab commit", ("cnilab", "git_commit")),
                       ("spec variant", ("spec", "variant"))):
        va, vb = get(a.manifest, *path), get(b.manifest, *path)
        if va != vb:
            found.append(f"{what}: {va} vs {vb}")
    tools_a, tools_b = a.manifest.get("tools") or {}, b.manifest.get("tools") or {}
    for name in sorted(set(tools_a) | set(tools_b)):
        ra = (tools_a.get(name) or {}).get("reported")
        rb = (tools_b.get(name) or {}).get("reported")
        if ra != rb:
            found.append(f"{name}: {ra} vs {rb}")
    da, db = (", ".join(sorted({str(c.params["duration_s"]) for c in run.cells.values()
                                if "duration_s" in c.params})) for run in (a, b))
    if da != db:
        found.append(f"test durations: {da or '-'} s vs {db or '-'} s")
    return found


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def format_table(a: LoadedRun, b: LoadedRun, rows: list[Row], normalised: bool) -> str:
    head = [f"A = {a.label}", f"B = {b.label}"]
    diffs = differences(a, b)
    if diffs:
        head.append("differs: " + "; ".join(diffs))
    if normalised:
        head.append("different targets: each cell as its ratio to its own run's underlay")
    lines = [*head, f"{'cell':<60} {'A':>10} {'B':>10} {'B/A [95 % CI]':>24}  significant"]
    for row in rows:
        interval = row.interval()
        ratio = "no test" if interval is None else \
            f"{row.effect.ratio:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"  # type: ignore[union-attr]
        sig = {True: "yes", False: "no", None: "-"}[row.significant()]
        lines.append(f"{row.label[:60]:<60} {_fmt(row.a.summary.mean / row.scale_a):>10} "
                     f"{_fmt(row.b.summary.mean / row.scale_b):>10} {ratio:>24}  {sig}")
    significant = sum(1 for r in rows if r.significant())
    lower = sorted({r.a.metric for r in rows if lower_is_better(r.a.metric)})
    lines.append(f"{len(rows)} shared cells, {significant} significantly different "
                 f"(Welch's t on log values, {100 * LEVEL:.0f} % intervals; lower is better "
                 f"for {', '.join(lower) or 'none'})")
    return "\n".join(lines)


def _figure(rows: list[Row], a: LoadedRun, b: LoadedRun) -> list[tuple[str, str]]:
    """Paired bars per metric: (title, PNG as a data URI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    by_metric: dict[str, list[Row]] = {}
    for row in rows:
        by_metric.setdefault(row.a.metric, []).append(row)
    for metric, group in sorted(by_metric.items()):
        group = group[:40]
        fig, ax = plt.subplots(figsize=(9, 0.32 * len(group) + 1.4))
        ys = range(len(group))
        ax.barh([y + 0.2 for y in ys], [r.a.summary.mean / r.scale_a for r in group],
                height=0.4, label=f"A {a.label}", color="#0072B2")
        ax.barh([y - 0.2 for y in ys], [r.b.summary.mean / r.scale_b for r in group],
                height=0.4, label=f"B {b.label}", color="#E69F00", hatch="//")
        ax.set_yticks(list(ys), [r.label[:70] for r in group], fontsize=7)
        better = "lower" if lower_is_better(metric) else "higher"
        ax.set_xlabel(f"{metric} ({better} is better)")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        out.append((metric, "data:image/png;base64," +
                    base64.b64encode(buffer.getvalue()).decode("ascii")))
    return out


def write_html(out: Path, pairs: list[tuple[LoadedRun, LoadedRun, list[Row], bool]]) -> None:
    import jinja2

    from cnilab.report import TEMPLATES
    from cnilab.rundir import atomic_write_text

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    template = env.get_template("compare.html.j2")
    sections = [{"a": a, "b": b, "rows": rows, "normalised": normalised,
                 "differences": differences(a, b), "figures": _figure(rows, a, b)}
                for a, b, rows, normalised in pairs]
    atomic_write_text(out, template.render(sections=sections, fmt=_fmt))




def compare(paths: list[Path]) -> list[tuple[LoadedRun, LoadedRun, list[Row], bool]]:
    """Each run after the first against the first; refuses runs that share no cell."""
    if len(paths) < 2:
        raise InputError("compare needs at least two run directories")
    runs = [load_run(p) for p in paths]
    out = []
    for other in runs[1:]:
        rows, normalised = compare_pair(runs[0], other)
        if not rows:
            raise InputError(f"{runs[0].path} and {other.path} share no cell (mode, placement, "
                             "test and parameters); nothing to compare")
        out.append((runs[0], other, rows, normalised))
    return out
