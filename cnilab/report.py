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

from cnilab.claims import Verdict, evaluate
from cnilab.decisions import Design
from cnilab.errors import InputError
from cnilab.figures import Figure, draw_all
from cnilab.reference import Comparison, compare
from cnilab.rundir import RunDir, atomic_write_text
from cnilab.spec import load_spec_text, recorded_variant
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
    spec_info = manifest["spec"]
    spec = load_spec_text(spec_info["text"], spec_info["path"], recorded_variant(spec_info))
    verdicts = evaluate(spec.claims, cells, records, spec.design())
    failures = [r for r in records if r["status"] != "ok"]
    return ReportData(manifest, run.read_state(), records, cells, verdicts, failures,
                      spec.design(), compare(spec.paper_values, cells, records))


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
    figures: list[Figure] = draw_all(data.cells, emulation, run.path / FIGURES_DIR)
    atomic_write_text(run.path / "summary.csv", summary_csv(data.cells))
    atomic_write_text(run.path / "claims.json",
                      json.dumps(verdicts_record(data.verdicts, data.design), indent=2) + "\n")
    atomic_write_text(run.path / "paper_values.json",
                      json.dumps([c.as_record() for c in data.paper], indent=2) + "\n")
    counts = {"ok": len(data.records) - len(data.failures), "failed": len(data.failures),
              "warmups": sum(1 for r in data.records if r.get("warmup")),
              "planned": data.state.get("planned", len(data.records))}
    context = {
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
    """The claims verdicts as plain text for the terminal."""
    rows = json.loads((run_path / "claims.json").read_text(encoding="utf-8"))
    if not rows:
        return "(this spec states no claims)"
    width = max(len(r["verdict"]) for r in rows)
    return "\n".join(f"{r['id']:>4}  {r['verdict']:<{width}}  {r['text']}" for r in rows)
