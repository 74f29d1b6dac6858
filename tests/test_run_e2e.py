"""End to end on the netns lab: run, report, resume after SIGKILL, failed measurements."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import processes
import pytest

from cnilab.bench.engine import RunReporter, build_manifest, execute, plan_measurements
from cnilab.bench.executor import Endpoint
from cnilab.lab import core
from cnilab.pins import load_pins
from cnilab.rundir import RunDir
from cnilab.spec import load_spec_text
from cnilab.targets.netns import NetnsTarget

pytestmark = [pytest.mark.root, pytest.mark.e2e]

SPEC = """\
name: e2e
matrix:
  - cni: flannel
    mode: vxlan
placements: PLACEMENTS
tests:
  - suite: iperf3-tcp
    params: {duration_s: DURATION, omit_s: 0}
repetitions: REPS
warmup: WARMUP
"""
EVERY_PLACEMENT = "[intra-host, inter-host, service, host-network, underlay]"


def _spec_text(reps: int, warmup: int = 0, placements: str = EVERY_PLACEMENT,
               duration: int = 1) -> str:
    return (SPEC.replace("REPS", str(reps)).replace("WARMUP", str(warmup))
            .replace("PLACEMENTS", placements).replace("DURATION", str(duration)))


def _write_spec(tmp_path: Path, reps: int, warmup: int = 0, **shape: Any) -> Path:
    path = tmp_path / "e2e.yaml"
    path.write_text(_spec_text(reps, warmup, **shape), encoding="utf-8")
    return path


def _iperf3_processes() -> list[str]:
    return processes.live("iperf3")


def test_run_and_report(cli, clean_lab: None, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = _write_spec(tmp_path, 2, warmup=1)
    proc = cli("run", str(spec), "--lab", "netns", "--out", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert "[15/15]" in proc.stderr and "warm-up 1" in proc.stderr  # progress lines

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["target"] == {"kind": "netns", "emulation": True}
    assert manifest["spec"]["sha256"] and "name: e2e" in manifest["spec"]["text"]
    assert manifest["tools"]["iperf3"]["reported"] == manifest["pins"]["tools"]["iperf3"]["version"]
    assert manifest["machine"]["cores"] >= 1 and manifest["machine"]["kernel"]
    assert "flannel/vxlan" in manifest["fidelity"]
    assert manifest["lab_snapshots"]["flannel/vxlan"].startswith("lab/")

    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    warmups = [r for r in records if r["warmup"]]
    assert len(warmups) == 5 and all(r["key"].endswith("#w1") for r in warmups)
    assert records[:5] == warmups  # warm-ups come first
    records = [r for r in records if not r["warmup"]]
    assert len(records) == 10
    assert {r["cell"]["placement"] for r in records} == {"intra-host", "inter-host", "service",
                                                         "host-network", "underlay"}
    for r in records:
        assert r["status"] == "ok", r["error"]
        assert 0.05 < r["metrics"]["throughput_gbps"] < 500
        assert (run_dir / r["raw"]["client"]).is_file()
        # pinned (auto): stream tests, client and server on different CPUs
        assert r["commands"]["client"][:3] == ["taskset", "-c", "0"]
        assert r["commands"]["server"][:3] == ["taskset", "-c", "1"]
        assert r["cpu_pinning"] == {"client": 0, "server": 1}
        assert r["commands"]["client"][3] == "iperf3" and "--json" in r["commands"]["client"]
        # machine CPU cost from /proc/stat around the client run
        m = r["metrics"]
        assert m["cpu_busy_s"] > 0 and m["cpu_s_per_gbit"] > 0 and m["cycles_per_packet"] > 0
        assert m["client_interface_packets"] > 1000
        assert r["params"]["port"] == 5201
    # interleaved order: repetition 1 of every cell before repetition 2
    assert [r["repetition"] for r in records] == [1] * 5 + [2] * 5
    service = next(r for r in records if r["cell"]["placement"] == "service")
    assert service["endpoints"]["server"]["address"].startswith("10.96.")
    assert service["endpoints"]["server"]["listen_address"].startswith("10.244.")
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "complete" and state["completed"] == 15
    assert list((run_dir / "ansible").iterdir())

    rep = cli("report", str(run_dir))
    assert rep.returncode == 0, rep.stderr
    report = (run_dir / "report.md").read_text()
    assert "| 2 |" in report and "| 3 |" not in report  # n = 2: warm-ups are not counted
    assert run_dir.name in report and "an emulation" in report
    assert (run_dir / "figures" / "throughput.png").stat().st_size > 5000
    assert rep.stdout.strip() == str(run_dir / "report.html")
    rows = list(csv.DictReader(io.StringIO((run_dir / "summary.csv").read_text())))
    assert len({r["cell_id"] for r in rows}) == 5                 # every cell, and per cell
    assert all(r["n"] == "2" and r["failed"] == "0" for r in rows)  # n=2, 0 failed
    # every metric its suite reports, the one the claims compare included
    assert {r["metric"] for r in rows} >= {"throughput_gbps", "cycles_per_mtu_packet"}
    assert not _iperf3_processes()


def test_resume_after_sigkill_repeats_nothing(cli, clean_lab: None, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Killed mid-run, moved to another directory, resumed: nothing measured is lost or
    repeated, the run keeps its id, the rebuilt lab warms up every cell still owed a
    repetition (not only the interrupted round's), and state.json never counts more done
    than planned. Three placements: what resuming does is the same for five."""
    spec = _write_spec(tmp_path, 3, warmup=1, placements="[intra-host, inter-host, underlay]")
    out = tmp_path / "runs"
    exe = Path(sys.executable).with_name("cnilab")
    proc = subprocess.Popen([str(exe), "run", str(spec), "--lab", "netns", "--out", str(out)],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    results = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(out.glob("*/results.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 5:   # 3 warm-ups, 2 reps
            results = found[0]
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert results is not None, "the run never recorded five measurements"
    kept = results.read_text().splitlines()
    assert 5 <= len(kept) < 12
    run_id = results.parent.name
    moved = results.parent.with_name(run_id + "-moved")
    results.parent.rename(moved)
    results = moved / "results.jsonl"

    resumed = cli("run", str(spec), "--lab", "netns", "--resume", str(moved))
    assert resumed.returncode == 0, resumed.stderr
    assert "already recorded, not repeated" in resumed.stderr
    final = [json.loads(line) for line in results.read_text().splitlines()]
    assert final[: len(kept)] == [json.loads(line) for line in kept]  # nothing lost or rewritten
    counts = Counter(r["key"] for r in final)
    assert len(final) == len(counts) and set(counts.values()) == {1}
    assert len([r for r in final if not r["warmup"]]) == 9
    assert all(r["status"] == "ok" and r["run_id"] == run_id for r in final)
    assert [r["seq"] for r in final] == list(range(1, len(final) + 1))
    after = final[len(kept):]
    owed = {r["cell_id"] for r in after if not r["warmup"]}
    warmed = {r["cell_id"] for r in after if r["warmup"]}
    assert owed and owed <= warmed
    first = {r["cell_id"]: i for i, r in reversed(list(enumerate(after))) if not r["warmup"]}
    assert all(any(r["warmup"] and r["cell_id"] == c for r in after[:i])
               for c, i in first.items())        # each warmed up before its first measure
    state = json.loads((moved / "state.json").read_text())
    assert state["completed"] == len(final) <= state["planned"]
    assert not _iperf3_processes()


def test_overrides_are_applied_recorded_and_held_on_resume(  # type: ignore[no-untyped-def]
        cli, clean_lab: None, tmp_path: Path) -> None:
    """--repetitions and --duration change what is measured (iperf3 -t), are recorded in
    the manifest and the report's spec, and a resume must give the same ones."""
    spec = _write_spec(tmp_path, 3, duration=2)
    proc = cli("run", str(spec), "--lab", "netns", "--out", str(tmp_path / "runs"),
               "--repetitions", "1", "--duration", "1", "--report")
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[0])
    records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(records) == 5 and {r["repetition"] for r in records} == {1}   # 5 placements
    for record in records:
        assert record["params"]["duration_s"] == 1
        client = record["commands"]["client"]
        assert client[client.index("--time") + 1] == "1"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["spec"]["overrides"] == {"duration_s": 1, "repetitions": 1}
    text = manifest["spec"]["text"]                           # the file as it was
    assert "repetitions: 3" in text and "duration_s: 2" in text
    summary = (run_dir / "summary.csv").read_text()
    assert "duration_s=1" in summary and "duration_s=2" not in summary
    other = cli("run", str(spec), "--lab", "netns", "--resume", str(run_dir),
                "--duration", "3")
    assert other.returncode == 2 and other.stderr.strip() == (
        f"cnilab: {run_dir} was started with --duration 1 --repetitions 1; resume it with "
        "the same, not --duration 3")
    same = cli("run", str(spec), "--lab", "netns", "--resume", str(run_dir),
               "--repetitions", "1", "--duration", "1")
    assert same.returncode == 0, same.stderr
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 5


def test_resume_with_other_spec_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = RunDir.create(tmp_path, "r")
    run.write_manifest({"spec": {"sha256": "0" * 64}})
    proc = cli("run", str(_write_spec(tmp_path, 2)), "--resume", str(run.path))
    assert proc.returncode == 2 and "sha256 mismatch" in proc.stderr


class _BrokenUnderlay(NetnsTarget):
    """The real lab, except that the underlay server address is not on any host."""

    def endpoints(self, placement: str) -> tuple[Endpoint, Endpoint]:
        client, server = super().endpoints(placement)
        if placement == "underlay":
            server = Endpoint(server.name, server.host, "10.99.0.250", "host", server.locator)
        return client, server


def test_failed_measurement_recorded_and_run_goes_on(clean_lab: None, tmp_path: Path) -> None:
    spec = load_spec_text(_spec_text(1), "e2e.yaml")
    target = _BrokenUnderlay()
    run = RunDir.create(tmp_path, "r")
    run.write_manifest(build_manifest(spec, load_pins(), target, run, ["test"]))
    lines: list[str] = []

    class Capture(RunReporter):
        def line(self, text: str, progress: bool = False) -> None:
            lines.append(text)

    outcome = execute(spec, target, run, reporter=Capture())
    records: list[dict[str, Any]] = list(run.results())
    assert len(records) == len(plan_measurements(spec)) == 5
    by_place = {r["cell"]["placement"]: r for r in records}
    assert by_place["intra-host"]["status"] == "ok" and by_place["inter-host"]["status"] == "ok"
    failed = by_place["underlay"]
    assert failed["status"] == "failed"
    assert "server exited" in failed["error"] and "10.99.0.250" in " ".join(
        failed["commands"]["server"])
    assert outcome.failures and not outcome.ok
    assert any("FAILED" in line for line in lines)
    assert not any(core.leftovers(None).values())
