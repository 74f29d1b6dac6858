"""The measurement loop: plan, measure, persist, resume.

Measurement only: it writes records and raw outputs into the run directory
and leaves statistics and presentation to later stages, which read the same
directory.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cnilab import machine, stats, toolversions
from cnilab.bench import perf, pinning, traffic
from cnilab.bench.executor import Endpoint, Executor
from cnilab.bench.parsers import ParseError
from cnilab.bench.parsers import kubelet as kubelet_parser
from cnilab.bench.parsers import startup as startup_parser
from cnilab.bench.suites import TrafficSuite, get_suite
from cnilab.bench.sweeps import Condition
from cnilab.claims import undecided_claims
from cnilab.errors import CnilabError, InputError, Interrupted
from cnilab.modes import get_mode
from cnilab.pins import Pins
from cnilab.progress import Display
from cnilab.rundir import RESULT_SCHEMA, RunDir, slug
from cnilab.spec import OVERRIDES, Cell, ModeRef, Spec, recorded_variant
from cnilab.summary import summarize_cells
from cnilab.targets.base import Target


@dataclass(frozen=True)
class Measurement:
    """One planned measurement: a cell at a repetition, or one of its discarded warm-ups."""

    cell: Cell
    repetition: int
    warmup: bool = False

    @property
    def key(self) -> str:
        return f"{self.cell.cell_id}#{'w' if self.warmup else 'r'}{self.repetition}"


def plan_measurements(spec: Spec, *, rebuilt_each_round: bool = False) -> list[Measurement]:
    """The fixed part of the plan (the minimum repetitions), in run order.

    Within one lab session: first ``warmup`` discarded runs of every cell
    (caches, ARP and conntrack entries, CPU frequency settle), then the
    repetitions interleaved: repetition 1 of every cell, then repetition 2 of
    every cell, and so on, so that slow drift of a noisy machine spreads over
    all cells instead of biasing the last one. With ``interleave: across-modes``
    every round visits every mode, in a fresh random order (``round_order``); a
    target that keeps modes side by side builds each mode's lab once, one that
    cannot (``rebuilt_each_round``) builds it, and warms it up, at every visit.
    Repetitions beyond the minimum are decided as results come in.
    """
    order: list[Measurement] = []
    for stage in _stages(spec):
        for rep in range(1, spec.repetitions + 1):
            for ref in stage:
                group = _cells_of(spec, ref)
                if rep == 1 or (len(stage) > 1 and rebuilt_each_round):
                    first = (rep - 1) * spec.warmup if rep > 1 else 0
                    for w in range(first + 1, first + spec.warmup + 1):
                        order.extend(Measurement(c, w, warmup=True) for c in group)
                order.extend(Measurement(c, rep) for c in group)
    return order


def round_order(stage: tuple[ModeRef, ...], run_id: str, rep: int) -> list[ModeRef]:
    """The order a round visits its modes: a fresh random order each round, so that no
    mode always follows the same one (what the machine did just before a measurement
    is spread over all modes). Seeded by the run and the round: a resume repeats it."""
    order = list(stage)
    if len(order) > 1:
        random.Random(f"{run_id}/round {rep}").shuffle(order)
    return order


def _stages(spec: Spec) -> list[tuple[ModeRef, ...]]:
    """Modes that share rounds: one each (within-mode) or all together (across-modes)."""
    if spec.interleave == "across-modes":
        return [tuple(spec.matrix)]
    return [(ref,) for ref in spec.matrix]


def _cells_of(spec: Spec, ref: ModeRef) -> list[Cell]:
    return [c for c in spec.cells() if c.mode_key == ref.key]


def primary_value(record: dict[str, Any]) -> float | None:
    value = record.get("metrics", {}).get(get_suite(record["cell"]["suite"]).primary_metric)
    return float(value) if isinstance(value, int | float) else None


def needs_repetition(spec: Spec, cell_records: list[dict[str, Any]], rep: int,
                     undecided: set[str] | None = None) -> bool:
    """Whether a cell gets repetition ``rep``, given its measured (non-warm-up) records.

    Fixed: every repetition up to ``repetitions``. Beyond that minimum, one more per
    round up to the cap, while (ci_target) the 95 % CI half-width exceeds ci_target x
    mean, or (sequential) the cell is in ``undecided``, the cells that claims not yet
    decided compare. Failed attempts count against the cap but not towards the
    statistics.
    """
    if rep > spec.repetition_cap:
        return False
    if rep <= spec.repetitions:
        return True
    if len(cell_records) != rep - 1:   # stopped earlier (converged) or already done
        return False
    if spec.sequential:
        return bool(undecided) and cell_records[0]["cell_id"] in (undecided or set())
    values = [v for r in cell_records if r["status"] == "ok"
              and (v := primary_value(r)) is not None]
    if len(values) < 2:
        return True
    summary = stats.summarize(values)
    assert spec.ci_target is not None and summary.ci95_half_width is not None
    return bool(summary.mean == 0 or
                summary.ci95_half_width / abs(summary.mean) > spec.ci_target)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _endpoint_record(e: Endpoint) -> dict[str, Any]:
    return {"name": e.name, "host": e.host, "address": e.address, "kind": e.kind,
            "listen_address": e.listen_address, "locator": e.locator}


def _base_record(measurement: Measurement, run: RunDir, seq: int) -> dict[str, Any]:
    cell = measurement.cell
    return {
        "schema": RESULT_SCHEMA,
        "run_id": run.run_id,
        "seq": seq,
        "key": measurement.key,
        "cell_id": cell.cell_id,
        "cell": cell.as_record(),
        "repetition": measurement.repetition,
        "warmup": measurement.warmup,
        "started_at": _now(),
        "status": "failed",
        "metrics": {},
        "error": None,
        "raw": {},
    }


def _raw_paths(measurement: Measurement) -> tuple[str, str | int]:
    """The cell's slug and repetition label in its raw file names."""
    cell = measurement.cell
    cell_slug = slug(f"{cell.mode_key.replace('/', '-')}-{cell.placement}-{cell.suite}")
    rep_label: str | int = (f"w{measurement.repetition}" if measurement.warmup
                            else measurement.repetition)
    return cell_slug, rep_label


def measure(
    executor: Executor,
    measurement: Measurement,
    client: Endpoint,
    server: Endpoint,
    run: RunDir,
    seq: int,
    *,
    pin: bool = False,
    background: tuple[Endpoint, Endpoint] | None = None,
) -> dict[str, Any]:
    """Run one traffic measurement, save its raw outputs, and return its record (never
    raises for a failed measurement: the failure is the record). The stages are
    cnilab.bench.traffic's: observe, save_raw, metrics.

    ``background`` is the endpoint pair for the cell's background flows, if any.
    """
    cell = measurement.cell
    suite = get_suite(cell.suite)
    assert isinstance(suite, TrafficSuite)
    resolved = suite.resolve(cell.params_dict())
    inv = suite.invocation(client, server, resolved)
    # pinning and perf act on this machine: only where the endpoints run here
    cpus = (pinning.choose(suite.kind, os.cpu_count() or 1)
            if pin and executor.local_machine else None)
    counting = executor.local_machine and perf.probe().usable
    if cpus is not None:
        inv = pinning.apply(inv, cpus)
    cell_slug, rep_label = _raw_paths(measurement)
    files = traffic.RawFiles(
        client=run.raw_path(seq, cell_slug, rep_label, "client", "json"),
        server=run.raw_path(seq, cell_slug, rep_label, "server", "json"),
        background=run.raw_path(seq, cell_slug, rep_label, "background", "json"),
        root=run.path)
    plan = traffic.background_plan(Condition.from_items(cell.condition), background,
                                   suite.nominal_seconds(resolved))
    record = _base_record(measurement, run, seq)
    record.update({
        "params": resolved,
        "cpu_pinning": {"client": cpus.client, "server": cpus.server} if cpus else None,
        "cpu_scope": executor.cpu_scope,
        "cycles_source": (perf.probe().reason if counting
                          else "/proc/stat busy time x reported clock (perf: " +
                          (perf.probe().reason if executor.local_machine
                           else "not run on the nodes") + ")"),
        "tool": suite.tool,
        "commands": {"server": inv.server_argv, "client": inv.client_argv},
        "endpoints": {"client": _endpoint_record(client), "server": _endpoint_record(server)},
    })
    started = time.monotonic()
    seen = traffic.observe(executor, inv, client, server, background=plan,
                           perf_csv=files.perf_csv, counting=counting)
    if plan is not None and seen.background is not None:
        record["endpoints"]["background"] = [_endpoint_record(e)
                                             for e in (plan.client, plan.server)]
    record["raw"] = traffic.save_raw(seen, files)
    outcome = traffic.metrics(suite, inv, seen, client, server)
    record.update(outcome.fields)
    record.update({"status": outcome.status, "error": outcome.error,
                   "metrics": outcome.metrics})
    record["ended_at"] = _now()
    record["elapsed_s"] = round(time.monotonic() - started, 3)
    return record


def measure_startup(target: Target, measurement: Measurement, run: RunDir,
                    seq: int) -> dict[str, Any]:
    """Start the cell's K pods on one node and record the per-step times."""
    resolved = get_suite(measurement.cell.suite).resolve(measurement.cell.params_dict())
    record = _base_record(measurement, run, seq)
    record.update({"params": resolved, "tool": "cni"})
    started = time.monotonic()
    try:
        outcome = target.start_pods(int(resolved["pods"]), seq)
        cell_slug, rep_label = _raw_paths(measurement)
        raw = run.raw_path(seq, cell_slug, rep_label, "pods", "json")
        text = json.dumps(outcome, indent=1)
        raw.write_text(text, encoding="utf-8")
        record["raw"]["pods"] = raw.relative_to(run.path).as_posix()
        record["metrics"] = startup_parser.parse(text)
        if outcome["errors"]:
            record["error"] = "; ".join(outcome["errors"])[:1000]
        else:
            record["status"] = "ok"
    except CnilabError as exc:
        record["error"] = str(exc)
    record["ended_at"] = _now()
    record["elapsed_s"] = round(time.monotonic() - started, 3)
    return record


def measure_snapshot(target: Target, measurement: Measurement, run: RunDir,
                     seq: int) -> dict[str, Any]:
    """Read the CNI agents' memory from every node that runs one (the kubelet's view)."""
    record = _base_record(measurement, run, seq)
    record.update({"params": {}, "tool": "kubelet"})
    started = time.monotonic()
    try:
        outcome = target.agent_memory()
        cell_slug, rep_label = _raw_paths(measurement)
        raw = run.raw_path(seq, cell_slug, rep_label, "agents", "json")
        text = json.dumps(outcome, indent=1)
        raw.write_text(text, encoding="utf-8")
        record["raw"]["agents"] = raw.relative_to(run.path).as_posix()
        found = kubelet_parser.agent_memory(outcome["agents"], outcome["summaries"])
        record["metrics"] = found["metrics"]
        if found["errors"]:
            record["error"] = "; ".join(found["errors"])[:1000]
        else:
            record["status"] = "ok"
    except (CnilabError, ParseError) as exc:
        record["error"] = str(exc)
    record["ended_at"] = _now()
    record["elapsed_s"] = round(time.monotonic() - started, 3)
    return record


def build_manifest(spec: Spec, pins: Pins, target: Target, run: RunDir,
                   argv: list[str]) -> dict[str, Any]:
    tools = toolversions.installed_versions(pins)
    return {
        "schema": RESULT_SCHEMA,
        "run_id": run.run_id,
        "created_at": _now(),
        "command": argv,
        "cnilab": machine.cnilab_provenance(),
        "spec": {"path": spec.path, "name": spec.name, "sha256": spec.sha256,
                 "variant": spec.variant, "quick": spec.quick,
                 "overrides": dict(spec.overrides), "text": spec.text},
        "target": {"kind": target.kind, "emulation": target.emulation, **target.describe()},
        # tools, machine and iptables backend below are this machine's; on a cluster the
        # measurements run on the nodes, whose facts are in each mode's switch record
        "machine_role": "measured" if target.emulation else "controller",
        "pins": pins.as_record(),
        "tools": {name: tv.as_record() for name, tv in tools.items()},
        "iptables_backend": toolversions.iptables_backend(),
        "machine": machine.machine_facts(),
        "modes": {ref.key: get_mode(ref.cni, ref.mode).as_record() for ref in spec.matrix},
        "fidelity": {},
        "lab_snapshots": {},
    }


class RunReporter:
    """Progress of the measurement loop: one line per measurement (kept), and the bar
    with the time left (cnilab.progress.Display) that the lab's playbooks share."""

    def __init__(self, stream: TextIO | None = None, display: Display | None = None) -> None:
        self.display = display or Display(stream)

    def line(self, text: str, progress: bool = False) -> None:
        """A finding, or (``progress``) a measurement done, which --quiet drops."""
        self.display.line(text, progress)

    def start(self, total: int, done: int) -> None:
        self.display.start(total, done, "measuring")

    def close(self) -> None:
        self.display.close()

    def measured(self, index: int, total: int, record: dict[str, Any],
                 total_label: str | None = None) -> None:
        cell = record["cell"]
        label = ModeRef.of_record(cell).key
        rep = f"{'warm-up ' if record.get('warmup') else 'r'}{record['repetition']}"
        condition = ",".join(f"{k}={v}" for k, v in cell.get("condition", {}).items())
        what = (f"{label} {cell['placement']} {cell['suite']} "
                f"{condition + ' ' if condition else ''}{rep}")
        head = f"[{index}/{total_label or total}] {what}"
        if record["status"] == "ok":
            metric = get_suite(cell["suite"]).primary_metric
            value = record["metrics"].get(metric)
            figure = f"{metric} {value:.2f}" if isinstance(value, float) else "ok"
            self.line(f"{head}: {figure} ({record['elapsed_s']:.1f} s)", progress=True)
        else:
            self.line(f"{head}: {record['status'].upper()}: {record['error']}")
        self.display.advance(what, total)


@dataclass
class RunOutcome:
    run: RunDir
    measured: int
    skipped: int
    failures: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class _Lab:
    """One mode's lab that is up: its target instance, executor and the path rules held."""

    ref: ModeRef
    target: Target
    executor: Executor
    rules: tuple[int, str] = (0, "rules")


class _LabSession:
    """The labs of a run. A target that keeps modes side by side gets every mode of a
    stage built at once, each in its own instance, and kept until the stage ends;
    otherwise at most one mode is up and the next is built when the mode changes. Path
    rules are reloaded only when the condition changes."""

    def __init__(self, spec: Spec, target: Target, run: RunDir, reporter: RunReporter) -> None:
        self.spec, self.target, self.run, self.reporter = spec, target, run, reporter
        self.side_by_side = target.side_by_side()
        self.labs: dict[ModeRef, _Lab] = {}
        self.unused: set[ModeRef] = set()     # built, not carried traffic yet
        self.current: _Lab | None = None

    def _workdir(self, ref: ModeRef) -> Path:
        return self.run.ansible_dir / slug(ref.key.replace("/", "-"))

    def prepare(self, refs: list[ModeRef]) -> None:
        """On a side-by-side target, bring the stage's modes up together: one build for
        all of them, so the orchestration's start-up is paid once per study."""
        todo = [ref for ref in refs if ref not in self.labs]
        if not self.side_by_side or len(todo) < 2:
            return
        self.reporter.line(f"lab up: {', '.join(ref.key for ref in todo)}, side by side on "
                           f"the {self.target.kind} lab")
        built = self.target.up_side_by_side(
            [(ref, self.spec.matrix.index(ref) + 1) for ref in todo],
            workdir=self.run.ansible_dir / "labs")
        for ref, instance in built.items():
            self.labs[ref] = _Lab(ref, instance, instance.executor())
            self.unused.add(ref)
            _record_snapshot(self.run, ref.key, instance)

    def ensure(self, ref: ModeRef) -> bool:
        """Make ``ref`` the lab that carries traffic, building it unless it is up; returns
        whether the lab is fresh (has carried no traffic yet)."""
        if ref in self.labs:
            self.current = self.labs[ref]
            fresh = ref in self.unused
            self.unused.discard(ref)
            return fresh
        if not self.side_by_side:
            self.close()
        instance = self.target.for_mode(ref, self.spec.matrix.index(ref) + 1)
        where = f" ({instance.describe()['instance']})" if "instance" in instance.describe() \
            else ""
        self.reporter.line(f"lab up: {ref.key} on the {self.target.kind} lab{where}")
        instance.up(ref, workdir=self._workdir(ref))
        lab = _Lab(ref, instance, instance.executor())
        self.labs[ref] = self.current = lab
        _record_snapshot(self.run, ref.key, instance)
        return True

    @property
    def active(self) -> _Lab:
        assert self.current is not None, "no lab is up"
        return self.current

    def hold_rules(self, condition: Condition) -> None:
        lab = self.active
        if condition.rules != lab.rules:
            count, shape = condition.rules
            lab.target.set_path_rules(count, shape)
            lab.rules = condition.rules

    def close(self) -> None:
        """Bring every lab of the session down: side by side at once, else the one up."""
        self.current = None
        self.unused.clear()
        if self.side_by_side and len(self.labs) > 1:
            labs, self.labs = list(self.labs.values()), {}
            self.reporter.line(f"lab down: {', '.join(lab.ref.key for lab in labs)}")
            self.target.down_side_by_side([lab.target for lab in labs],
                                          workdir=self.run.ansible_dir / "labs")
            return
        while self.labs:
            ref, lab = self.labs.popitem()
            self.reporter.line(f"lab down: {ref.key}")
            lab.target.down(workdir=self._workdir(ref))


class _RunState:
    """What a run has measured, kept in ``state.json`` as it changes: the measurements
    done (by key), each cell's measured records and warm-up count, the failures, and
    the sequence number of the next record."""

    def __init__(self, spec: Spec, run: RunDir, records: list[dict[str, Any]],
                 rebuilt_each_round: bool, unmeasured: dict[str, str] | None = None) -> None:
        self.run = run
        self.unmeasured = dict(unmeasured or {})   # suite -> why the target cannot run it
        self.undecided: set[str] | None = None   # sequential: cells this round measures
        self.done = {r["key"] for r in records}
        self.by_cell: dict[str, list[dict[str, Any]]] = {}
        self.warmups: dict[str, int] = {}
        for r in records:
            if r["warmup"]:
                self.warmups[r["cell_id"]] = self.warmups.get(r["cell_id"], 0) + 1
            else:
                self.by_cell.setdefault(r["cell_id"], []).append(r)
        self.failures = [r for r in records if r["status"] != "ok"]
        self.seq = len(records)
        self.measured = 0
        self.planned = len([m for m in plan_measurements(
            spec, rebuilt_each_round=rebuilt_each_round) if m.cell.suite not in self.unmeasured])
        self.state = run.read_state()
        self.state.update({"run_id": run.run_id, "planned": self.planned, "status": "running",
                           "repetitions": {"min": spec.repetitions, "max": spec.repetition_cap,
                                           "ci_target": spec.ci_target}})

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def next_warmup(self, cell: Cell) -> int:
        return self.warmups.get(cell.cell_id, 0) + 1

    def wants(self, spec: Spec, cell: Cell, rep: int) -> bool:
        """Whether repetition ``rep`` of ``cell`` is still to be measured."""
        return (cell.suite not in self.unmeasured and f"{cell.cell_id}#r{rep}" not in self.done
                and needs_repetition(spec, self.by_cell.get(cell.cell_id, []), rep,
                                     self.undecided))

    def look(self, spec: Spec, rep: int) -> list[str]:
        """Before round ``rep`` of a sequential study: evaluate the claims on the rounds
        before it and keep the cells that undecided claims compare; returns the ids of
        those claims. (Only earlier rounds count, so a resumed round sees what the
        interrupted one saw.)"""
        if not spec.sequential or rep <= spec.repetitions:
            self.undecided = None
            return []
        records = [r for recs in self.by_cell.values() for r in recs if r["repetition"] < rep]
        pending = undecided_claims(spec.claims, summarize_cells(records), records,
                                   spec.design())
        self.undecided = {cell for cells in pending.values() for cell in cells}
        self.state.setdefault("looks", {})[str(rep - 1)] = sorted(pending)
        self.save()
        return sorted(pending)

    def add(self, measurement: Measurement, record: dict[str, Any]) -> None:
        """Keep a record the moment its measurement ends."""
        self.run.append_result(record)
        self.done.add(measurement.key)
        cell_id = measurement.cell.cell_id
        if measurement.warmup:
            self.warmups[cell_id] = self.warmups.get(cell_id, 0) + 1
        else:
            self.by_cell.setdefault(cell_id, []).append(record)
        self.measured += 1
        self.save()
        if record["status"] != "ok":
            self.failures.append(record)

    def skip(self, skipped: dict[str, str]) -> None:
        self.state["skipped_modes"] = skipped
        self.state["unmeasured_suites"] = self.unmeasured
        self.save()

    def save(self, status: str | None = None) -> None:
        if status:
            self.state["status"] = status
        self.state["done"] = sorted(self.done)
        self.state["completed"] = len(self.done)
        # the fixed plan, grown by what was decided beyond it (adaptive repetitions,
        # warm-ups of a lab rebuilt on resume): never less than what is done
        self.state["planned"] = max(self.planned, len(self.done))
        self.state["updated_at"] = _now()
        self.run.write_state(self.state)


def _check_records_fit(spec: Spec, run: RunDir, done: set[str]) -> None:
    cells = {c.cell_id for c in spec.cells()}
    for key in done:
        cell_id, _, rep = key.rpartition("#")
        if cell_id not in cells or (rep.startswith("r") and int(rep[1:]) > spec.repetition_cap):
            raise InputError(f"{run.results_path}: holds measurements this spec does not plan "
                             f"(e.g. {key}); was the spec changed?")


def _warmup_cells(spec: Spec, progress: _RunState, stage: tuple[ModeRef, ...],
                  ref: ModeRef, rep: int, todo: list[Measurement]) -> list[Cell]:
    """The cells a freshly built lab warms up: this round's, and, when the lab stays up
    for the mode's later rounds (within-mode), every cell still owed a repetition there
    (after a resume those need it too, not only the interrupted round's)."""
    cells = [m.cell for m in todo]
    if len(stage) == 1:
        ids = {c.cell_id for c in cells}
        cells += [c for c in _cells_of(spec, ref) if c.cell_id not in ids and any(
            progress.wants(spec, c, r) for r in range(rep + 1, spec.repetitions + 1))]
    return cells


def _measure_one(spec: Spec, session: _LabSession, run: RunDir, measurement: Measurement,
                 seq: int) -> dict[str, Any]:
    """The record of one measurement, with exactly its cell's condition held."""
    cell = measurement.cell
    condition = Condition.from_items(cell.condition)
    session.hold_rules(condition)   # exactly the cell's condition, whatever ran before
    lab = session.active
    if get_suite(cell.suite).kind == "startup":
        return measure_startup(lab.target, measurement, run, seq)
    if get_suite(cell.suite).kind == "snapshot":
        return measure_snapshot(lab.target, measurement, run, seq)
    client, server = lab.target.endpoints(cell.placement)
    background = (lab.target.background_endpoints(cell.placement)
                  if condition.background_flows else None)
    return measure(lab.executor, measurement, client, server, run, seq,
                   pin=spec.cpu_pinning == "auto", background=background)


def execute(
    spec: Spec,
    target: Target,
    run: RunDir,
    *,
    reporter: RunReporter | None = None,
    hook: Callable[[dict[str, Any]], None] | None = None,
) -> RunOutcome:
    """Run (or continue) every measurement the spec asks for that ``results.jsonl`` lacks.

    Repetitions go in rounds (see ``plan_measurements``); a lab that comes up
    fresh gets the spec's warm-ups first, also after a resume. Each record is
    appended the moment its measurement ends.
    """
    reporter = reporter or RunReporter()
    run.repair_results()
    records = list(run.results())
    rebuilt_each_round = (spec.interleave == "across-modes" and len(spec.matrix) > 1
                          and not target.side_by_side())
    unmeasured = {test.suite: why for test in spec.tests
                  if (why := target.cannot_measure(test.suite)) is not None}
    progress = _RunState(spec, run, records, rebuilt_each_round, unmeasured)
    _check_records_fit(spec, run, progress.done)
    cells = [c for c in spec.cells() if c.suite not in unmeasured]
    # adaptive: at least the fixed plan, at most every cell up to the cap
    per_extra_round = 1 + (spec.warmup if rebuilt_each_round else 0)
    planned = progress.planned
    most = planned + len(cells) * (spec.repetition_cap - spec.repetitions) * per_extra_round
    total_label = f"{planned}..{most}" if spec.adaptive else str(planned)
    reporter.start(planned, len(progress.done))

    def record_one(m: Measurement) -> None:
        record = _measure_one(spec, session, run, m, progress.next_seq())
        progress.add(m, record)
        done = len(progress.done)
        reporter.measured(done, max(planned, done), record,
                          total_label if done <= most else None)
        if hook is not None:
            hook(record)

    skipped = {ref.key: why for ref in spec.matrix
               if (why := target.unavailable(ref)) is not None}
    for key, why in skipped.items():
        reporter.line(f"skipping {key}: {why}")
    progress.skip(skipped)
    for suite, why in unmeasured.items():
        reporter.line(f"not measured on this target: {suite}: {why}")
    if records:
        reporter.line(f"resuming: {len(records)} measurements already recorded, not repeated")
    session = _LabSession(spec, target, run, reporter)
    try:
        for stage in _stages(spec):
            session.prepare([ref for ref in stage if ref.key not in skipped])
            for rep in range(1, spec.repetition_cap + 1):
                pending = progress.look(spec, rep)
                if spec.sequential and rep > spec.repetitions:
                    if not pending:
                        reporter.line(f"after round {rep - 1}: every claim is decided")
                        break
                    reporter.line(f"after round {rep - 1}: {len(pending)} claim(s) undecided "
                                  f"({', '.join(pending)}); round {rep} measures their "
                                  f"{len(progress.undecided or ())} cell(s)")
                for ref in round_order(stage, run.run_id, rep):
                    if ref.key in skipped:
                        continue
                    todo = [Measurement(c, rep) for c in _cells_of(spec, ref)
                            if progress.wants(spec, c, rep)]
                    if not todo:
                        continue
                    try:
                        fresh = session.ensure(ref)
                    except Interrupted:
                        raise
                    except CnilabError as exc:
                        if not target.skips_modes_that_fail_to_come_up:
                            raise
                        # one plugin failing to deploy is a finding, not the end of a
                        # cluster run; a resume tries the mode again
                        skipped[ref.key] = f"could not be brought up: {exc}"[:1000]
                        progress.skip(skipped)
                        reporter.line(f"skipping {ref.key}: {skipped[ref.key]}")
                        continue
                    if fresh:
                        for cell in _warmup_cells(spec, progress, stage, ref, rep, todo):
                            for _ in range(spec.warmup):
                                record_one(Measurement(cell, progress.next_warmup(cell),
                                                       warmup=True))
                    for m in todo:
                        record_one(m)
            session.close()
    except (KeyboardInterrupt, Interrupted):
        progress.save("interrupted")
        raise
    except BaseException:
        progress.save("failed")
        raise
    finally:
        session.close()      # whatever ended the run, its labs go down with it
        reporter.close()     # the bar comes down before any error is printed
    progress.save("complete")
    return RunOutcome(run, progress.measured, len(records), progress.failures)


def _record_snapshot(run: RunDir, key: str, target: Target) -> None:
    """Store the lab as built (devices, routes, MTUs) and its fidelity notes."""
    snap = target.snapshot()
    name = slug(key.replace("/", "-"))
    path = run.lab_dir / f"{name}.json"
    path.write_text(json.dumps(snap, indent=2, sort_keys=True), encoding="utf-8")
    manifest = run.read_manifest()
    manifest["lab_snapshots"][key] = path.relative_to(run.path).as_posix()
    manifest["fidelity"][key] = target.fidelity()
    if "idle_cpu" in snap:          # what the target's own machinery used while idle
        manifest.setdefault("idle_cpu", {})[key] = snap["idle_cpu"]
    run.write_manifest(manifest)


def new_run_id(spec: Spec) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{spec.name}"


def ensure_same_spec(run: RunDir, spec: Spec) -> None:
    """``--resume`` must continue the experiment it started, not a different one."""
    manifest = run.read_manifest()
    if manifest.get("spec", {}).get("sha256") != spec.sha256:
        raise InputError(f"{spec.path}: differs from the spec of {run.path} "
                         "(sha256 mismatch); resume with the same spec")
    variant = recorded_variant(manifest.get("spec", {}))
    if variant != spec.variant:
        was = f"--{variant}" if variant else "the full variant"
        raise InputError(f"{run.path} was started with {was} of {spec.path}; resume it the "
                         "same way")
    recorded = dict(manifest.get("spec", {}).get("overrides") or {})
    if recorded != dict(spec.overrides):
        def flags(given: dict[str, Any]) -> str:
            return " ".join(f"{OVERRIDES[k][2]} {v}" for k, v in sorted(given.items())) or \
                "no --repetitions/--duration"
        raise InputError(f"{run.path} was started with {flags(recorded)}; resume it with the "
                         f"same, not {flags(dict(spec.overrides))}")


def ensure_same_target(run: RunDir, target: Target) -> None:
    """``--resume`` must continue on the target it started on: a cluster run resumed
    without its inventory would go on in the netns lab, mixing the two in one run."""
    was = run.read_manifest().get("target", {})
    now = {"kind": target.kind, **target.describe()}
    if was.get("kind") != now["kind"]:
        how = (f"--inventory {was.get('inventory')}" if was.get("inventory")
               else f"--lab {was.get('kind')}")
        raise InputError(f"{run.path} ran on the {was.get('kind')} target; resume it with "
                         f"{how}")
    for key in ("inventory", "profile"):
        if key in was and str(was[key]) != str(now.get(key)):
            raise InputError(f"{run.path} ran with {key} {was[key]}, not {now.get(key)}; "
                             "resume it the same way")


def resolve_resume(path: Path) -> RunDir:
    return RunDir.open(path)
