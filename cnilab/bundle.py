"""Artifact bundles: a run directory an evaluator can check without trusting us.

``bundle`` packs the run directory with its report into a ``.tar.gz`` with a
``SHA256SUMS`` file and a README for an artifact evaluation committee: the commit, the
requirements, how long the run and its variants take, and every claim with its verdict
and the figure that shows it. Ansible's per-event JSON files (hundreds per study, each
a few KB) stay out unless asked for: the bundle keeps each playbook's output, status and
the events of the tasks that failed. ``verify`` checks the checksums, then re-derives
every stored metric that comes from a tool's output by re-parsing the raw files
(the same parsers the engine used), recomputes the per-cell statistics from the
re-parsed values, and compares them with the bundled ``summary.csv``.

Bundles come from other people, so ``verify`` trusts nothing in one: extraction is
capped in size and number of files (a bundle of a full study is tens of MB), and every
path a bundle names (in ``SHA256SUMS``, in a record's ``raw``) must lie inside the
extracted bundle, or the bundle is refused naming the entry: otherwise a checksum line
for ``/etc/passwd`` would make ``verify`` an oracle for any file on the reader's machine.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cnilab.bench.parsers import ParseError
from cnilab.bench.parsers import iperf3 as iperf3_parser
from cnilab.bench.parsers import kubelet as kubelet_parser
from cnilab.bench.parsers import netperf as netperf_parser
from cnilab.bench.parsers import startup as startup_parser
from cnilab.errors import InputError
from cnilab.estimate import estimate, overhead_s, wall_s
from cnilab.figures import figure_for_claim
from cnilab.headline import base_command, tally
from cnilab.report import ReportData, load, markdown_env, write_report
from cnilab.rundir import RunDir
from cnilab.spec import every_variant, load_spec_text
from cnilab.summary import summarize_cells, summary_csv

SUMS = "SHA256SUMS"
README = "BUNDLE-README.md"
# what verify extracts at most
MAX_EXTRACTED_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 100_000
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (.+)$")
PARSERS = {"iperf3": iperf3_parser.parse, "netperf": netperf_parser.parse,
           "cni": startup_parser.parse, "kubelet": kubelet_parser.parse}
RAW_KEY = {"iperf3": "client", "netperf": "client", "cni": "pods", "kubelet": "agents"}


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# the ansible-runner events kept without --ansible-events: those of a task that failed
FAILED_EVENTS = {"runner_on_failed", "runner_on_unreachable", "runner_item_on_failed"}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in (SUMS, README))


def _failed_event(path: Path) -> bool:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True                          # unreadable: keep it, it may tell why
    return isinstance(event, dict) and event.get("event") in FAILED_EVENTS


def bundled_files(root: Path, ansible_events: bool = False) -> list[Path]:
    """The files of a run directory that go into its bundle."""
    return [p for p in _files(root) if ansible_events or p.parent.name != "job_events"
            or _failed_event(p)]


def _variant_estimates(data: ReportData) -> list[tuple[str, str]]:
    """(command, time) of the full spec and each variant, at this run's overhead."""
    spec_info = data.manifest["spec"]
    overhead = overhead_s(data.manifest, data.state, data.records)
    base = base_command([str(a) for a in data.manifest.get("command", [])])
    return [(" ".join(base + ([f"--{variant}"] if variant else [])),
             estimate(spec, overhead).text())
            for variant, spec in every_variant(load_spec_text(spec_info["text"],
                                                              spec_info["path"]))]


def _panel(claim: Any) -> str:
    """Where in its figure a claim's numbers are: the placements and the modes."""
    placements = claim.get("placements") or [claim.get("placement")]
    modes = [*(claim.get("better") or []), *(claim.get("than") or []),
             *([claim.get("candidate")] if claim.get("candidate") else []),
             *(claim.get("among") or claim.get("modes") or [])]
    where = ", ".join(str(p) for p in placements if p and p != "node")
    listed = ", ".join(dict.fromkeys(str(m) for m in modes))
    return f"{where}: {listed}" if where else listed


def _readme(data: ReportData, run: RunDir, files: list[Path], left_out: int) -> str:
    figures = {p.stem for p in (run.path / "figures").glob("*.png")}
    wall = wall_s(data.manifest, data.state)
    return markdown_env().get_template("bundle-readme.md.j2").render(
        manifest=data.manifest, state=data.state, verdicts=data.verdicts,
        command=" ".join(data.manifest.get("command", [])), files=len(files),
        left_out=left_out, wall_min=None if wall is None else wall / 60,
        variants=_variant_estimates(data),
        tally=tally([v.verdict for v in data.verdicts]),
        panel_of={v.claim.id: _panel(v.claim) for v in data.verdicts},
        figure_of={v.claim.id: name for v in data.verdicts
                   if (name := figure_for_claim(
                       v.claim.get("suite"), v.claim.get("metric"),
                       v.claim.get("sweep") or v.claim.get("at_max"))) in figures})


def bundle(run_path: Path, out: Path | None = None, ansible_events: bool = False) -> Path:
    """Write ``<run-id>.tar.gz`` (next to the run directory unless ``out``); with
    ``ansible_events`` every Ansible event file too, not only the failed tasks' ones."""
    run = RunDir.open(run_path)
    if not (run.path / "report.html").is_file() or not (run.path / "claims.json").is_file():
        write_report(run.path)
    data = load(run.path)
    files = bundled_files(run.path, ansible_events)
    sums = "".join(f"{sha256_file(p)}  {p.relative_to(run.path).as_posix()}\n" for p in files)
    readme = _readme(data, run, files, len(_files(run.path)) - len(files))
    target = out or run.path.parent / f"{run.run_id}.tar.gz"
    tmp = target.with_name(f".{target.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=f"{run.run_id}/{path.relative_to(run.path).as_posix()}")
        for name, text in ((SUMS, sums), (README, readme)):
            blob = text.encode("utf-8")
            info = tarfile.TarInfo(f"{run.run_id}/{name}")
            info.size, info.mode = len(blob), 0o644
            tar.addfile(info, io.BytesIO(blob))
    os.replace(tmp, target)
    return target


@dataclass
class Verification:
    files: int = 0
    reparsed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(
            float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _extract(bundle_path: Path, dest: Path) -> None:
    """Extract a bundle as a stream, member by member, refusing before it writes more
    than the caps (a gzip bomb stops at its first oversized header, unread)."""
    written = members = 0
    try:
        with tarfile.open(bundle_path, "r|gz") as tar:
            for member in tar:
                members += 1
                written += max(member.size, 0)
                if members > MAX_MEMBERS or written > MAX_EXTRACTED_BYTES:
                    raise InputError(
                        f"{bundle_path}: refused at {member.name!r}: extracting it would "
                        f"write more than {MAX_MEMBERS} files or "
                        f"{MAX_EXTRACTED_BYTES // (1024 * 1024)} MiB, far beyond a cnilab "
                        "bundle")
                tar.extract(member, dest, filter="data")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise InputError(f"{bundle_path}: not a readable .tar.gz bundle: {exc}") from None


def inside(root: Path, name: str, what: str) -> Path:
    """``root/name`` when ``name`` is a relative path that stays inside ``root`` (links
    resolved); else the one-line refusal naming ``what``."""
    pure = PurePosixPath(name)
    path = root / pure
    if (not name or pure.is_absolute() or ".." in pure.parts or "\\" in name
            or not path.resolve().is_relative_to(root.resolve())):
        raise InputError(f"{what} names {name[:200]!r}, a path outside the bundle; refused")
    return path


def verify(bundle_path: Path) -> Verification:
    """Check a bundle: checksums, then re-parse and re-summarise from the raw outputs."""
    result = Verification()
    with tempfile.TemporaryDirectory() as tmp:
        _extract(bundle_path, Path(tmp))
        roots = [p for p in Path(tmp).iterdir() if p.is_dir()]
        if len(roots) != 1 or not (roots[0] / SUMS).is_file():
            raise InputError(f"{bundle_path}: no <run-id>/{SUMS} inside; not a cnilab bundle")
        root = roots[0]
        listed: set[str] = set()
        sums = (root / SUMS).read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(sums, start=1):
            match = _SUM_LINE.match(line)
            if match is None:
                raise InputError(f"{bundle_path}: {SUMS}:{number}: not '<sha256>  <path>'; "
                                 "refused")
            digest, name = match.groups()
            listed.add(name)
            path = inside(root, name, f"{bundle_path}: {SUMS}:{number}")
            if not path.is_file():
                result.problems.append(f"{name}: listed in {SUMS} but missing")
            elif sha256_file(path) != digest:
                result.problems.append(f"{name}: sha256 differs from {SUMS}")
            else:
                result.files += 1
        for path in _files(root):
            if path.relative_to(root).as_posix() not in listed:
                result.problems.append(f"{path.relative_to(root).as_posix()}: not in {SUMS}")
        records = list(RunDir(root).results())
        rebuilt = [_reparse(root, r, result, bundle_path) for r in records]
        summary = summary_csv(summarize_cells(rebuilt))
        stored = (root / "summary.csv").read_text(encoding="utf-8") \
            if (root / "summary.csv").is_file() else ""
        if summary != stored:
            result.problems.append("summary.csv differs from the one recomputed from the raw "
                                   "outputs")
    return result


def _reparse(root: Path, record: dict[str, Any], result: Verification,
             bundle_path: Path) -> dict[str, Any]:
    """The record with every parser-derived metric recomputed from its raw file."""
    tool = record.get("tool")
    raw_name = record.get("raw", {}).get(RAW_KEY.get(str(tool), ""))
    if record["status"] != "ok" or tool not in PARSERS or not raw_name:
        return record
    raw = inside(root, str(raw_name), f"{bundle_path}: record {record['key']} raw")
    try:
        parsed = PARSERS[str(tool)](raw.read_text(encoding="utf-8"))
    except (OSError, ParseError) as exc:
        result.problems.append(f"{record['key']}: raw output {raw_name} does not parse: {exc}")
        return record
    for key, value in parsed.items():
        if not _same(record["metrics"].get(key), value):
            result.problems.append(f"{record['key']}: {key} is {record['metrics'].get(key)!r} "
                                   f"in results.jsonl but {value!r} from {raw_name}")
    result.reparsed += 1
    return {**record, "metrics": {**record["metrics"], **parsed}}
