"""Glue between the CLI and the engine: checks before anything is written, then the run."""

from __future__ import annotations

from pathlib import Path

from cnilab import paths
from cnilab.ansible_engine import Progress
from cnilab.bench.engine import (
    RunOutcome,
    RunReporter,
    build_manifest,
    ensure_same_spec,
    ensure_same_target,
    execute,
    new_run_id,
    plan_measurements,
)
from cnilab.pins import load_pins
from cnilab.progress import Display
from cnilab.report import write_report
from cnilab.rundir import RunDir
from cnilab.spec import Spec, load_spec, with_overrides
from cnilab.targets import make_target


def plan_summary(spec: Spec) -> str:
    cells = spec.cells()
    return (f"{len(spec.matrix)} mode(s), {len(cells)} cell(s), {spec.repetitions} "
            f"repetition(s), {len(plan_measurements(spec))} measurement(s)")


def start_or_resume(
    spec_path: Path, lab: str, out: Path | None, resume: Path | None, *, with_report: bool,
    argv: list[str], variant: str = "", inventory: Path | None = None,
    profile: str = "current", replace_kube_proxy: bool = False, replace_lab: bool = False,
    overrides: dict[str, int] | None = None, quiet: bool = False,
) -> tuple[RunOutcome, Path | None]:
    spec = with_overrides(load_spec(spec_path, variant), overrides or {})
    # one display for the run's bar and its playbooks' task lines
    display = Display(quiet=quiet)
    target = make_target(lab, inventory, profile, replace_kube_proxy,
                         hosts=spec.hosts, pods_per_host=spec.pods_per_host,
                         replace_lab=replace_lab, progress=Progress(display=display))
    pins = load_pins()
    target.preflight(spec)
    if resume is not None:
        run = RunDir.open(resume)
        ensure_same_spec(run, spec)
        ensure_same_target(run, target)
        run_id = run.run_id
    else:
        run_id = new_run_id(spec)
    # held before the run directory exists: a busy lab refuses with nothing written
    with target.session(" ".join(argv), f"run {run_id}"):
        target.check_free(spec)
        if resume is None:
            run = RunDir.create(out or paths.default_runs_dir(), run_id)
            run.write_manifest(build_manifest(spec, pins, target, run, argv))
        outcome = execute(spec, target, run, reporter=RunReporter(display=display))
    report = write_report(run.path) if with_report else None
    return outcome, report
