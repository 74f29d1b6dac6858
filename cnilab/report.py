"""Presentation: a run directory in; ``summary.csv``, figures, claims, ``report.md`` and a
self-contained ``report.html`` out.

Reads only the run directory (manifest, state and results), so a report can be
regenerated anywhere from an archived run: the spec, and with it the claims,
are taken from the copy stored in the manifest.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from cnilab import headline
from cnilab.claims import Verdict, evaluate
from cnilab.decisions import Design
from cnilab.errors import InputError
from cnilab.figures import Figure, draw_all, mode_groups
from cnilab.reference import Comparison, compare
from cnilab.rundir import RunDir, atomic_write_text
from cnilab.spec import spec_of_record
from cnilab.summary import CellSummary, summarize_cells, summary_csv

TEMPLATES = Path(__file__).resolve().parent / "templates"
FIGURES_DIR = "figures"


@dataclass
class ReportData:
    manifest: dict[str, Any]
    state: dict[str, Any]
    records: list[dict[str, Any]]
    cells: list[CellSummary]
    verdicts: list[Verdict]
    failures: list[dict[str, Any]]
    design: Design
    paper: list[Comparison]


def load(run_path: Path) -> ReportData:
    """Everything a report shows, computed from the run directory alone."""
    run = RunDir.open(run_path)
    manifest = run.read_manifest()
    records = list(run.results())
    if not records:
        raise InputError(f"{run.results_path}: no measurements recorded yet")
    cells = summarize_cells(records)
    spec = spec_of_record(manifest["spec"])
    state = run.read_state()
    given = state.get("unmeasured_suites")
    unmeasured = ({str(k): str(v) for k, v in given.items()} if isinstance(given, dict)
                  else {})
    verdicts = evaluate(spec.claims, cells, records, spec.design(), unmeasured)
    failures = [r for r in records if r["status"] != "ok"]
    return ReportData(manifest, state, records, cells, verdicts, failures,
                      spec.design(), compare(spec.paper_values, cells, records, unmeasured))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_MARKDOWN_SPECIAL = re.compile(r"([\\|\[\]`])")


def markdown_text(value: Any) -> str:
    """A value as Markdown text: what Markdown would turn into structure (a table cell
    border, a link, code, raw HTML) escaped, on one line. Emphasis is left alone."""
    text = re.sub(r"\s*[\r\n]+\s*", " ", str(value))
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def markdown_env() -> jinja2.Environment:
    return _env("markdown")


def _env(kind: str) -> jinja2.Environment:
    """The templates' environment. Every value a template prints comes from a spec, a
    record or a tool's output, which travel with run directories and bundles: in HTML
    each one is escaped (the template's own markup is written in the template), in
    Markdown each one goes through ``markdown_text``."""
    common: dict[str, Any] = {"loader": jinja2.FileSystemLoader(TEMPLATES),
                              "undefined": jinja2.StrictUndefined, "trim_blocks": True,
                              "lstrip_blocks": True, "keep_trailing_newline": True}
    if kind == "html":
        return jinja2.Environment(autoescape=True, **common)
    return jinja2.Environment(autoescape=False, finalize=markdown_text, **common)


@dataclass
class Pivot:
    """One suite and metric, modes side by side: rows are placements and test settings,
    columns the modes, each entry the mean and its 95 % interval half-width."""

    title: str
    modes: list[str]
    rows: list[tuple[str, list[str]]]


def _placement_first(label: str) -> tuple[int, str]:
    from cnilab.bench.placements import PLACEMENTS

    placement = label.split(" (")[0]
    order = list(PLACEMENTS)
    return (order.index(placement) if placement in order else 99, label)


def pivots(cells: list[CellSummary]) -> list[Pivot]:
    from cnilab.bench.suites import get_suite
    from cnilab.summary import lower_is_better

    out = []
    modes = list(dict.fromkeys(c.mode_key for c in cells))
    for suite in dict.fromkeys(c.suite for c in cells):
        group = [c for c in cells if c.suite == suite]
        for metric in get_suite(suite).summary_metrics:
            table: dict[str, dict[str, str]] = {}
            for c in group:
                stats = c.summary if metric == c.metric else c.metrics.get(metric)
                if stats is None or stats.mean is None:
                    continue
                inner = ", ".join(f"{k}={v}" for k, v in sorted({**c.params,
                                                                  **c.condition}.items())
                                  if k not in ("duration_s", "omit_s"))
                label = c.placement + (f" ({inner})" if inner else "")
                half = stats.ci95_half_width
                table.setdefault(label, {})[c.mode_key] = (
                    f"{stats.mean:.4g}" + (f" ±{half:.2g}" if half is not None else ""))
            if not table:
                continue
            present = [m for m in modes if any(m in row for row in table.values())]
            better = "lower" if lower_is_better(metric) else "higher"
            out.append(Pivot(f"{suite}: {metric} ({better} is better)", present,
                             [(label, [table[label].get(m, "-") for m in present])
                              for label in sorted(table, key=_placement_first)]))
    return out


def verdicts_record(verdicts: list[Verdict], design: Design) -> list[dict[str, Any]]:
    return [{"id": v.claim.id, "text": v.claim.text, "source": v.claim.source,
             "kind": v.claim.kind, "verdict": v.verdict, "reason": v.reason,
             "look": v.look, "n": v.n, "comparisons": v.pairs, "evidence": v.evidence,
             "design": design.as_record()} for v in verdicts]


def write_report(run_path: Path) -> Path:
    """Write every report artifact into the run directory; return ``report.html``."""
    data = load(run_path)
    run = RunDir.open(run_path)
    emulation = bool(data.manifest["target"]["emulation"])
    figures: list[Figure] = draw_all(data.cells, emulation, run.path / FIGURES_DIR,
                                     mode_groups(data.manifest.get("modes") or {}))
    atomic_write_text(run.path / "summary.csv", summary_csv(data.cells))
    atomic_write_text(run.path / "claims.json",
                      json.dumps(verdicts_record(data.verdicts, data.design), indent=2) + "\n")
    atomic_write_text(run.path / "paper_values.json",
                      json.dumps([c.as_record() for c in data.paper], indent=2) + "\n")
    counts = {"ok": len(data.records) - len(data.failures), "failed": len(data.failures),
              "warmups": sum(1 for r in data.records if r.get("warmup")),
              "planned": data.state.get("planned", len(data.records))}
    skipped = data.state.get("skipped_modes")
    context = {
        "tally": headline.tally([v.verdict for v in data.verdicts]),
        "effects": {v.claim.id: headline.effect_text(headline.deciding_pair(v))
                    for v in data.verdicts},
        "next_step": headline.next_step(data.verdicts, data.manifest, data.records,
                                        set(skipped) if isinstance(skipped, dict) else set(),
                                        data.state),
        "headline_figure": headline.headline_figure(data.verdicts),
        "pivots": pivots(data.cells),
        "manifest": data.manifest, "cells": data.cells, "verdicts": data.verdicts,
        "failures": data.failures, "counts": counts, "figures": figures,
        "skipped": data.state.get("skipped_modes", {}), "figures_dir": FIGURES_DIR,
        "design": data.design, "paper": data.paper,
    }
    atomic_write_text(run.path / "report.md",
                      _env("markdown").get_template("report.md.j2").render(**context))
    images = {f.name: _data_uri(f.files["png"]) for f in figures if f.drawn}
    html = _env("html").get_template("report.html.j2").render(images=images, **context)
    out = run.path / "report.html"
    atomic_write_text(out, html)
    return out


def verdict_table(run_path: Path) -> str:
    """The claims verdicts as plain text for the terminal: the tally, then one line per
    claim."""
    rows = json.loads((run_path / "claims.json").read_text(encoding="utf-8"))
    if not rows:
        return "(this spec states no claims)"
    width = max(len(r["verdict"]) for r in rows)
    manifest = RunDir.open(run_path).read_manifest()
    where = " (on the netns lab: an emulation)" if manifest.get("target", {}).get(
        "emulation") else ""
    return "\n".join([f"Verdicts: {headline.tally([r['verdict'] for r in rows])}{where}",
                      *(f"{r['id']:>4}  {r['verdict']:<{width}}  {r['text']}" for r in rows)])
