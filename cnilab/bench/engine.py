"""The measurement loop: plan, measure, persist, resume.

Measurement only: it writes records and raw outputs into the run directory
and leaves statistics and presentation to later stages, which read the same
directory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cnilab import machine, toolversions
from cnilab.ansible_engine import Interrupted
from cnilab.bench import cpu, pinning
from cnilab.bench.executor import Endpoint, Executor, ExecutorError
from cnilab.bench.parsers import ParseError
from cnilab.bench.suites import get_suite
from cnilab.errors import CnilabError, InputError
from cnilab.modes import get_mode
from cnilab.pins import Pins
from cnilab.rundir import RESULT_SCHEMA, RunDir, slug
from cnilab.spec import Cell, Spec
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


def plan_measurements(spec: Spec) -> list[Measurement]:
    """All measurements in run order.

    Within one (cni, mode): first ``warmup`` discarded runs of every cell
    (caches, ARP and conntrack entries, CPU frequency settle), then the
    repetitions interleaved: repetition 1 of every cell, then repetition 2 of
    every cell, and so on, so that slow drift of a noisy machine spreads over
    all cells instead of biasing the last one.
    """
    cells = spec.cells()
    order: list[Measurement] = []
    for ref in spec.matrix:
        group = [c for c in cells if c.mode_key == ref.key]
        for rep in range(1, spec.warmup + 1):
            order.extend(Measurement(c, rep, warmup=True) for c in group)
        for rep in range(1, spec.repetitions + 1):
            order.extend(Measurement(c, rep) for c in group)
    return order


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _endpoint_record(e: Endpoint) -> dict[str, Any]:
    return {"name": e.name, "host": e.host, "address": e.address, "kind": e.kind,
            "listen_address": e.listen_address}


def measure(
    executor: Executor,
    measurement: Measurement,
    client: Endpoint,
    server: Endpoint,
    run: RunDir,
    seq: int,
    *,
    pin: bool = False,
) -> dict[str, Any]:
    """Run one measurement, save its raw outputs, and return its record (never raises
    for a failed measurement: the failure is the record)."""
    cell = measurement.cell
    suite = get_suite(cell.suite)
    resolved = suite.resolve(cell.params_dict())
    inv = suite.invocation(client, server, resolved)
    cpus = pinning.choose(suite.kind, os.cpu_count() or 1) if pin else None
    if cpus is not None:
        inv = pinning.apply(inv, cpus)
    cell_slug = slug(f"{cell.mode_key.replace('/', '-')}-{cell.placement}-{cell.suite}")
    rep_label = f"w{measurement.repetition}" if measurement.warmup else measurement.repetition
    client_raw = run.raw_path(seq, cell_slug, rep_label, "client", "json")
    server_raw = run.raw_path(seq, cell_slug, rep_label, "server", "json")
    record: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "run_id": run.run_id,
        "seq": seq,
        "key": measurement.key,
        "cell_id": cell.cell_id,
        "cell": cell.as_record(),
        "params": resolved,
        "repetition": measurement.repetition,
        "warmup": measurement.warmup,
        "cpu_pinning": {"client": cpus.client, "server": cpus.server} if cpus else None,
        "cpu_scope": "machine: /proc/stat over the client run",
        "tool": suite.tool,
        "commands": {"server": inv.server_argv, "client": inv.client_argv},
        "endpoints": {"client": _endpoint_record(client), "server": _endpoint_record(server)},
        "started_at": _now(),
        "status": "failed",
        "metrics": {},
        "error": None,
        "raw": {},
    }
    started = time.monotonic()
    handle = None
    try:
        handle = executor.start_server(server, inv.server_argv)
        executor.wait_listening(handle, inv.port)
        packets_before = executor.interface_packets(client)
        cpu_before = cpu.sample()
        result = executor.run_client(client, inv.client_argv, inv.timeout_s)
        cpu_used = cpu.delta_seconds(cpu_before, cpu.sample())
        packets_after = executor.interface_packets(client)
        packets = (packets_after - packets_before
                   if packets_before is not None and packets_after is not None else None)
        client_raw.write_text(result.stdout, encoding="utf-8")
        record["raw"]["client"] = client_raw.relative_to(run.path).as_posix()
        if result.stderr.strip():
            err_path = client_raw.with_suffix(".stderr.txt")
            err_path.write_text(result.stderr, encoding="utf-8")
            record["raw"]["client_stderr"] = err_path.relative_to(run.path).as_posix()
        record["exit_status"] = result.returncode
        if result.timed_out:
            record["status"] = "timeout"
            record["error"] = f"client did not finish within {inv.timeout_s:g} s"
        else:
            try:
                record["metrics"] = suite.parse(result.stdout)
                record["metrics"].update(cpu_used)
                if packets is not None:
                    record["metrics"]["client_interface_packets"] = packets
                record["metrics"].update(cpu.cost_metrics(cpu_used, record["metrics"], packets,
                                                          cpu.clock_hz()))
                record["status"] = "ok" if result.returncode == 0 else "failed"
                if result.returncode != 0:
                    record["error"] = f"client exited {result.returncode}: " + \
                        result.stderr.strip()[-500:]
            except ParseError as exc:
                record["error"] = f"{exc}; stderr: {result.stderr.strip()[-500:]}"
    except ExecutorError as exc:
        record["error"] = str(exc)
    finally:
        if handle is not None:
            stopped = executor.stop_server(handle)
            if stopped.stdout.strip():
                server_raw.write_text(stopped.stdout, encoding="utf-8")
                record["raw"]["server"] = server_raw.relative_to(run.path).as_posix()
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
                 "text": spec.text},
        "target": {"kind": target.kind, "emulation": target.emulation},
        "pins": pins.as_record(),
        "tools": {name: tv.as_record() for name, tv in tools.items()},
        "iptables_backend": toolversions.iptables_backend(),
        "machine": machine.machine_facts(),
        "modes": {ref.key: get_mode(ref.cni, ref.mode).as_record() for ref in spec.matrix},
        "fidelity": {},
        "lab_snapshots": {},
    }


class RunReporter:
    """Progress lines for the measurement loop."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def measured(self, index: int, total: int, record: dict[str, Any]) -> None:
        cell = record["cell"]
        label = f"{cell['cni']}/{cell['mode']}{'+policy' if cell.get('policy') else ''}"
        rep = f"{'warm-up ' if record.get('warmup') else 'r'}{record['repetition']}"
        head = f"[{index}/{total}] {label} {cell['placement']} {cell['suite']} {rep}"
        if record["status"] == "ok":
            metric = get_suite(cell["suite"]).primary_metric
            value = record["metrics"].get(metric)
            figure = f"{metric} {value:.2f}" if isinstance(value, float) else "ok"
            self.line(f"{head}: {figure} ({record['elapsed_s']:.1f} s)")
        else:
            self.line(f"{head}: {record['status'].upper()}: {record['error']}")


@dataclass
class RunOutcome:
    run: RunDir
    measured: int
    skipped: int
    failures: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.failures


def execute(
    spec: Spec,
    target: Target,
    run: RunDir,
    *,
    reporter: RunReporter | None = None,
    hook: Callable[[dict[str, Any]], None] | None = None,
) -> RunOutcome:
    """Run (or continue) every planned measurement not yet in ``results.jsonl``."""
    reporter = reporter or RunReporter()
    run.repair_results()
    records = list(run.results())
    done = {r["key"] for r in records}
    failures = [r for r in records if r["status"] != "ok"]
    planned = plan_measurements(spec)
    unknown = done - {m.key for m in planned}
    if unknown:
        raise InputError(f"{run.results_path}: holds measurements this spec does not plan "
                         f"(e.g. {sorted(unknown)[0]}); was the spec changed?")
    todo = [m for m in planned if m.key not in done]
    seq = len(records)
    state = run.read_state()
    state.update({"run_id": run.run_id, "planned": len(planned), "status": "running"})

    def save_state(status: str | None = None) -> None:
        if status:
            state["status"] = status
        state["done"] = sorted(done)
        state["completed"] = len(done)
        state["updated_at"] = _now()
        run.write_state(state)

    save_state()
    if len(planned) - len(todo):
        reporter.line(f"resuming: {len(planned) - len(todo)} of {len(planned)} measurements "
                      "already recorded, not repeated")
    measured = 0
    try:
        for ref in spec.matrix:
            group = [m for m in todo if m.cell.mode_key == ref.key]
            if not group:
                continue
            ansible_dir = run.ansible_dir / slug(ref.key.replace("/", "-"))
            reporter.line(f"lab up: {ref.key} on the {target.kind} lab")
            target.up(ref.cni, ref.mode, policy=ref.policy, hosts=spec.hosts,
                      pods_per_host=spec.pods_per_host, ansible_dir=ansible_dir)
            try:
                _record_snapshot(run, ref.key, target)
                executor = target.executor()
                for m in group:
                    client, server = target.endpoints(m.cell.placement)
                    seq += 1
                    record = measure(executor, m, client, server, run, seq,
                                     pin=spec.cpu_pinning == "auto")
                    run.append_result(record)
                    done.add(m.key)
                    measured += 1
                    save_state()
                    if record["status"] != "ok":
                        failures.append(record)
                    reporter.measured(len(done), len(planned), record)
                    if hook is not None:
                        hook(record)
            finally:
                reporter.line(f"lab down: {ref.key}")
                target.down(ansible_dir=ansible_dir)
    except (KeyboardInterrupt, Interrupted):
        save_state("interrupted")
        raise
    except CnilabError:
        save_state("failed")
        raise
    save_state("complete")
    return RunOutcome(run, measured, len(planned) - len(todo), failures)


def _record_snapshot(run: RunDir, key: str, target: Target) -> None:
    """Store the lab as built (devices, routes, MTUs) and its fidelity notes."""
    snap = target.snapshot()
    name = slug(key.replace("/", "-"))
    path = run.lab_dir / f"{name}.json"
    path.write_text(json.dumps(snap, indent=2, sort_keys=True), encoding="utf-8")
    manifest = run.read_manifest()
    manifest["lab_snapshots"][key] = path.relative_to(run.path).as_posix()
    manifest["fidelity"][key] = target.fidelity()
    run.write_manifest(manifest)


def new_run_id(spec: Spec) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{spec.name}"


def ensure_same_spec(run: RunDir, spec: Spec) -> None:
    """``--resume`` must continue the experiment it started, not a different one."""
    manifest = run.read_manifest()
    if manifest.get("spec", {}).get("sha256") != spec.sha256:
        raise InputError(f"{spec.path}: differs from the spec of {run.path} "
                         "(sha256 mismatch); resume with the same spec")


def resolve_resume(path: Path) -> RunDir:
    return RunDir.open(path)
