"""Planning logic of the engine (pure): rounds, interleaving, adaptive repetitions,
background flow groups, perf output parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnilab.bench import background, perf
from cnilab.bench.engine import needs_repetition, plan_measurements, round_order
from cnilab.spec import load_spec_text

DATA = Path(__file__).resolve().parent / "data"

TWO_MODES = """\
name: t
matrix:
  - {cni: flannel, mode: vxlan}
  - {cni: flannel, mode: host-gw}
placements: [inter-host]
tests:
  - suite: netperf-tcp-rr
repetitions: REPS
warmup: 1
"""


def _spec(reps: str = "2", extra: str = "") -> Any:
    return load_spec_text(TWO_MODES.replace("REPS", reps) + extra, "t.yaml")


def _rec(value: float, status: str = "ok") -> dict[str, Any]:
    return {"cell": {"suite": "netperf-tcp-rr"}, "status": status,
            "metrics": {"transactions_per_s": value}}


def test_within_mode_plan_keeps_one_lab_per_mode() -> None:
    keys = [(m.cell.mode, m.key.rsplit("#", 1)[1]) for m in plan_measurements(_spec())]
    assert keys == [("vxlan", "w1"), ("vxlan", "r1"), ("vxlan", "r2"),
                    ("host-gw", "w1"), ("host-gw", "r1"), ("host-gw", "r2")]


def test_across_modes_plan_alternates_modes_each_round() -> None:
    spec = _spec(extra="interleave: across-modes\n")
    # labs side by side: built once, warmed up once
    keys = [(m.cell.mode, m.key.rsplit("#", 1)[1]) for m in plan_measurements(spec)]
    assert keys == [("vxlan", "w1"), ("vxlan", "r1"), ("host-gw", "w1"), ("host-gw", "r1"),
                    ("vxlan", "r2"), ("host-gw", "r2")]
    # a target holding one mode at a time rebuilds, and warms up, at every visit
    plan = plan_measurements(spec, rebuilt_each_round=True)
    keys = [(m.cell.mode, m.key.rsplit("#", 1)[1]) for m in plan]
    assert keys == [("vxlan", "w1"), ("vxlan", "r1"), ("host-gw", "w1"), ("host-gw", "r1"),
                    ("vxlan", "w2"), ("vxlan", "r2"), ("host-gw", "w2"), ("host-gw", "r2")]


def test_rounds_visit_modes_in_a_fresh_order_that_a_resume_repeats() -> None:
    spec = _spec(extra="interleave: across-modes\n")
    stage = tuple(spec.matrix) * 1
    orders = {tuple(r.key for r in round_order(stage, "run-a", rep)) for rep in range(1, 20)}
    assert len(orders) == 2          # both orders of two modes occur over 19 rounds
    assert round_order(stage, "run-a", 7) == round_order(stage, "run-a", 7)


def test_fixed_repetitions_ignore_the_spread() -> None:
    spec = _spec("3")
    assert needs_repetition(spec, [_rec(1), _rec(100)], 3)
    assert not needs_repetition(spec, [_rec(1), _rec(1), _rec(1)], 4)


def test_adaptive_stops_when_the_interval_is_narrow_enough() -> None:
    spec = _spec("{min: 3, max: 6, ci_target: 0.05}")
    assert needs_repetition(spec, [], 1) and needs_repetition(spec, [_rec(10)], 2)
    tight = [_rec(100.0), _rec(100.5), _rec(99.5)]   # half-width ~1.2 % of the mean
    assert not needs_repetition(spec, tight, 4)
    loose = [_rec(80.0), _rec(120.0), _rec(100.0)]   # half-width ~50 %
    assert needs_repetition(spec, loose, 4)
    assert not needs_repetition(spec, [*loose, _rec(90), _rec(110), _rec(95)], 7)  # cap
    # a failed attempt counts against the cap but not towards the statistics
    assert needs_repetition(spec, [_rec(100.0), _rec(0, "failed"), _rec(100.2)], 4) is False
    assert needs_repetition(spec, [_rec(100.0), _rec(0, "failed"), _rec(0, "timeout")], 4)
    # once stopped, a cell is not picked up again in a later round
    assert not needs_repetition(spec, tight, 5)


def test_background_flows_split_under_the_iperf3_stream_limit() -> None:
    assert background.groups(0) == []
    assert background.groups(40) == [40]
    assert background.groups(250) == [84, 83, 83]
    assert sum(background.groups(2000)) == 2000
    assert max(background.groups(2000)) <= background.FLOWS_PER_PROCESS


def test_perf_csv_parser_on_real_output() -> None:
    # Recorded on a VM: software events count, the cycles counter is not exposed.
    parsed = perf.parse_csv((DATA / "perf" / "cpu-clock-and-cycles-vm.csv").read_text())
    assert parsed["cpu-clock"] == 605.15
    assert parsed["cycles"] is None


def test_perf_probe_gives_a_reason() -> None:
    support = perf.probe()
    assert support.reason
    assert support.usable == support.reason.startswith("perf stat")
