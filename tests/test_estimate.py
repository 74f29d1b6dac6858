"""How long a spec takes (cnilab/estimate.py) and `cnilab validate`'s plan of each variant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnilab.bench.engine import plan_measurements
from cnilab.estimate import DEFAULT_OVERHEAD_S, estimate, overhead_s
from cnilab.spec import every_variant, load_spec, load_spec_text

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "experiments" / "lanman2020.yaml"


def _record(suite: str, params: dict[str, object], elapsed: float) -> dict[str, object]:
    return {"cell": {"suite": suite, "condition": {}}, "params": params, "elapsed_s": elapsed}


def test_overhead_is_the_run_wall_time_beyond_its_tests() -> None:
    manifest = {"created_at": "2026-11-30T10:00:00+00:00"}
    state = {"updated_at": "2026-11-30T10:01:40+00:00"}          # 100 s
    # 8 x (4 s + 1 s omitted) of iperf3, 2 pod start-ups (no test of fixed length): 40 s
    records = ([_record("iperf3-tcp", {"duration_s": 4, "omit_s": 1}, 6.0)] * 8
               + [_record("pod-startup", {"pods": 1}, 2.0)] * 2)
    assert overhead_s(manifest, state, records) == pytest.approx(6.0)
    # without the timestamps: the records' own elapsed time beyond their tests
    assert overhead_s({}, {}, records) == pytest.approx((8 * 1.0 + 2 * 2.0) / 10)
    assert overhead_s(manifest, state, []) == DEFAULT_OVERHEAD_S


TIMED = """\
name: timed
matrix: [{cni: flannel, mode: vxlan}, {cni: calico, mode: bgp}]
placements: [inter-host]
tests:
  - suite: iperf3-tcp
    params: {duration_s: 10, omit_s: 2}        # 12 s: the omitted ramp-up runs too
  - suite: netperf-tcp-crr
    params: {duration_s: 10}                   # 14 s: netserver holds it 4 s more
  - suite: iperf3-tcp
    params: {duration_s: 10, omit_s: 0}
    sweep: {background_flows: [0, 50]}         # 10 s; with flows their ceil(10 + 1 + 2) s
  - suite: pod-startup
    params: {pods: 1}                          # no test of fixed length
repetitions: 2
warmup: 1
"""


def test_estimate_counts_what_each_measurements_tools_take() -> None:
    spec = load_spec_text(TIMED, "timed.yaml")
    per_round = 12 + 14 + 10 + 13 + 0 + 5 * 1.0     # five cells per mode, 1 s overhead each
    got = estimate(spec, overhead=1.0)
    assert got.minutes_low == pytest.approx(2 * per_round * 3 / 60)   # 2 modes x 3 rounds
    assert got.measurements == 2 * 5 * 2
    # a skipped mode's cells are left out
    assert estimate(spec, 1.0, {"calico/bgp"}).minutes_low == pytest.approx(per_round * 3 / 60)
    # and the study's own plan counts every cell at the minimum repetitions
    study = load_spec(STUDY, "quick")
    assert estimate(study).measurements == len(study.cells()) * study.repetitions


def test_validate_shows_the_plan_of_every_variant(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("validate", str(STUDY))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{STUDY}: ok"
    assert load_spec(STUDY).variants == ("quick", "standard")
    assert load_spec(STUDY, "quick").variants == ("quick", "standard")
    assert load_spec(ROOT / "experiments" / "quickstart.yaml").variants == ()
    # from any one variant, every one of them, each with its own values applied
    plans = every_variant(load_spec(STUDY, "quick"))
    assert [(name, s.variant) for name, s in plans] == [("", ""), ("quick", "quick"),
                                                         ("standard", "standard")]
    assert plans[1][1] == load_spec(STUDY, "quick")
    assert [name for name, _ in every_variant(load_spec(ROOT / "experiments" /
                                                        "quickstart.yaml"))] == [""]
    for variant, label in (("", "full"), ("quick", "--quick"), ("standard", "--standard")):
        spec = load_spec(STUDY, variant)
        line = next(x for x in lines if x.split()[0] == label)
        assert f"{len(plan_measurements(spec))} measurement(s)" in line
        assert estimate(spec).text() in line
        assert re.search(r"\d+(\.\d)? (min|h)", line)
