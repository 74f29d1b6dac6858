"""The extended paper's sweeps through the real engine on the netns lab (root):
policy scaling, background flows, pod start-up, adaptive repetitions, interleaving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import processes
import pytest

from cnilab.bench.engine import RunReporter, build_manifest, execute
from cnilab.bench.filter_rules import CHAIN
from cnilab.lab import sh
from cnilab.pins import load_pins
from cnilab.rundir import RunDir
from cnilab.spec import load_spec_text
from cnilab.targets.netns import NetnsTarget

pytestmark = [pytest.mark.root, pytest.mark.e2e]


class _Lines(RunReporter):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def line(self, text: str, progress: bool = False) -> None:
        self.lines.append(text)


def _run(tmp_path: Path, text: str, hook: Any = None) -> tuple[list[dict[str, Any]], RunDir,
                                                               list[str]]:
    spec = load_spec_text(text, "sweep.yaml")
    target = NetnsTarget()
    run = RunDir.create(tmp_path, "r")
    run.write_manifest(build_manifest(spec, load_pins(), target, run, ["test"]))
    reporter = _Lines()
    outcome = execute(spec, target, run, reporter=reporter, hook=hook)
    assert outcome.ok, [f["error"] for f in outcome.failures]
    return list(run.results()), run, reporter.lines


POLICY = """\
name: policy
matrix: [{cni: calico, mode: vxlan, policy: on}]
placements: [intra-host]
tests:
  - suite: netperf-tcp-rr
    params: {duration_s: 1}
    sweep: {policy_rules: [0, 5000], rule_shape: [rules, ipset]}
  - suite: pod-startup
    params: {pods: [1, 3]}
repetitions: 2
warmup: 0
"""


def test_policy_scaling_and_pod_startup_through_the_engine(clean_lab: None,
                                                           tmp_path: Path) -> None:
    seen: list[tuple[dict[str, Any], int]] = []

    def rules_on_path(record: dict[str, Any]) -> None:
        # still held right after the measurement: count what the traffic walked past, on
        # h1 of the mode's lab instance (netns:1, the first matrix entry)
        host_netns = "cnl.1-h1"
        if "endpoints" in record:
            assert record["endpoints"]["client"]["locator"] == f"{host_netns}-p1"
        out = sh.run(sh.in_netns(host_netns, ["iptables", "-S"]), check=False).stdout
        seen.append((record["cell"]["condition"],
                     sum(1 for line in out.splitlines() if line.startswith(f"-A {CHAIN}"))))

    records, _, _ = _run(tmp_path, POLICY, rules_on_path)
    traffic = [r for r in records if r["cell"]["suite"] == "netperf-tcp-rr"]
    assert len(traffic) == 3 * 2
    for condition, count in seen:
        if condition.get("rule_shape") == "rules":
            assert count == 5000
        elif condition.get("rule_shape") == "ipset":
            assert count == 1      # one rule, a set of 5000 entries
        else:
            assert condition == {} and count == 0   # 0 rules: the plain cell, none loaded

    def mean_tps(shape: str | None) -> float:
        vals = [r["metrics"]["transactions_per_s"] for r in traffic
                if r["cell"]["condition"].get("rule_shape") == shape]
        return sum(vals) / len(vals)

    # 5000 rules walked per packet cost most of the transaction rate; a set lookup does not
    assert mean_tps("rules") < 0.8 * mean_tps(None)
    assert mean_tps("ipset") > 1.5 * mean_tps("rules")

    startup = [r for r in records if r["cell"]["suite"] == "pod-startup"]
    assert len(startup) == 2 * 2 and all(r["cell"]["placement"] == "node" for r in startup)
    for r in startup:
        pods = r["params"]["pods"]
        assert r["metrics"]["pods"] == pods and r["metrics"]["all_ready_ms"] > 0
        details = json.loads((tmp_path / "r" / r["raw"]["pods"]).read_text())["pods"]
        assert len(details) == pods and all(d["first_packet_ms"] is not None for d in details)


BACKGROUND = """\
name: background
matrix: [{cni: flannel, mode: vxlan}]
placements: [inter-host]
tests:
  - suite: iperf3-tcp
    params: {duration_s: 1, omit_s: 0}
    sweep: {background_flows: [0, 120]}
repetitions: 1
warmup: 0
"""


def test_background_flows_run_for_the_whole_measurement(clean_lab: None,
                                                        tmp_path: Path) -> None:
    records, run, _ = _run(tmp_path, BACKGROUND)
    assert len(records) == 2
    quiet, loaded = sorted(records, key=lambda r: r["cell"]["condition"].get("background_flows",
                                                                               0))
    assert "background" not in quiet
    bg = loaded["background"]
    assert bg["background_flows"] == 120 and bg["background_processes"] == 2
    assert bg["background_errors"] == []
    # 120 flows x 10 Mbit/s, paced: the load really ran at its rate
    assert 0.9 * 1200 <= bg["background_achieved_mbps"] <= 1.1 * 1200
    outputs = json.loads((run.path / loaded["raw"]["background"]).read_text())
    streams = [len(json.loads(o)["start"]["connected"]) for o in outputs]
    assert sorted(streams) == [60, 60]
    assert {e["name"] for e in loaded["endpoints"]["background"]} == {"h1-p2", "h2-p2"}
    assert processes.live("iperf3") == []


ADAPTIVE = """\
name: adaptive
matrix:
  - {cni: flannel, mode: vxlan}
  - {cni: flannel, mode: host-gw}
placements: [intra-host]
tests:
  - suite: netperf-tcp-rr
    params: {duration_s: 1}
repetitions: {min: 2, max: 3, ci_target: 0.5}
warmup: 1
interleave: across-modes
"""


def _instance_up(prefix: str) -> bool:
    return any(n.startswith(f"{prefix}-") for n in sh.run(["ip", "netns", "list"]).stdout
               .split())


def test_adaptive_repetitions_and_interleaving_across_modes(clean_lab: None,
                                                           tmp_path: Path) -> None:
    from cnilab.stats import summarize

    seen_up: list[tuple[bool, bool]] = []

    def both_up(record: dict[str, Any]) -> None:
        seen_up.append((_instance_up("cnl.1"), _instance_up("cnl.2")))

    records, _, lines = _run(tmp_path, ADAPTIVE, hook=both_up)
    measured = [r for r in records if not r["warmup"]]
    by_cell: dict[str, list[float]] = {}
    for r in measured:
        by_cell.setdefault(r["cell_id"], []).append(r["metrics"]["transactions_per_s"])
    assert len(by_cell) == 2

    def relative_half_width(values: list[float]) -> float:
        s = summarize(values)
        assert s.ci95_half_width is not None
        return s.ci95_half_width / s.mean

    for values in by_cell.values():
        n = len(values)
        assert 2 <= n <= 3
        # it went on exactly while the interval was wider than +-50 % of the mean ...
        for k in range(2, n):
            assert relative_half_width(values[:k]) > 0.5
        # ... and stopped when it was narrow enough, or at the cap
        assert n == 3 or relative_half_width(values) <= 0.5

    # Both modes stand side by side, each in its own lab instance (netns:1 and netns:2,
    # matrix order), built together once before the first measurement and warmed up
    # once; every round visits both; both stay up until the run ends.
    ups = [line for line in lines if line.startswith("lab up:")]
    assert len(ups) == 1 and "flannel/vxlan, flannel/host-gw, side by side" in ups[0], ups
    assert [r["cell"]["mode"] for r in records if r["warmup"]] == ["vxlan", "host-gw"] or \
        [r["cell"]["mode"] for r in records if r["warmup"]] == ["host-gw", "vxlan"]
    assert {r["endpoints"]["client"]["name"] for r in measured} == {"h1-p1"}
    assert seen_up and all(up == (True, True) for up in seen_up)
    rounds = [r["repetition"] for r in measured]
    assert rounds == sorted(rounds)                  # round by round
    assert all(len({r["cell"]["mode"] for r in measured if r["repetition"] == k}) ==
               len([r for r in measured if r["repetition"] == k]) for k in (1, 2))
    # progress shows the adaptive range: 2 rounds x 2 modes plus the warm-ups at least,
    # and one more round for both cells at most
    assert any("/6..8]" in line for line in lines), lines


SEQUENTIAL = """\
name: sequential
matrix:
  - {cni: flannel, mode: vxlan}
  - {cni: flannel, mode: host-gw}
placements: [inter-host]
tests:
  - suite: netperf-tcp-rr
    params: {duration_s: 1}
    sweep: {policy_rules: [0, 20000], rule_shape: rules}
  - suite: iperf3-tcp
    params: {duration_s: 1, omit_s: 0}
repetitions: {min: 3, max: 4}
warmup: 0
interleave: across-modes
claims:
  - id: R
    text: 20000 rules on the path cost transactions
    source: test
    kind: trend
    modes: [flannel/vxlan, flannel/host-gw]
    sweep: policy_rules
    condition: {rule_shape: rules}
    direction: decreasing
    metric: transactions_per_s
    suite: netperf-tcp-rr
    placement: inter-host
  - id: T
    text: host-gw beats vxlan
    source: test
    kind: order
    better: [flannel/host-gw]
    than: [flannel/vxlan]
    metric: throughput_gbps
    suite: iperf3-tcp
    placement: inter-host
"""


@pytest.mark.alone   # asserts the look at which the measured values decide R
def test_sequential_rounds_measure_only_what_undecided_claims_need(
        clean_lab: None, tmp_path: Path) -> None:
    """A study in a named instance whose claims decide the rounds: after each round from
    the minimum on, only the cells of undecided claims are measured again, and the
    report's verdicts replay the same looks from the records."""
    from cnilab.claims import DECIDED, evaluate
    from cnilab.spec import load_spec_text
    from cnilab.summary import summarize_cells

    spec = load_spec_text(SEQUENTIAL, "sequential.yaml")
    target = NetnsTarget(instance="seq")
    run = RunDir.create(tmp_path, "s")
    run.write_manifest(build_manifest(spec, load_pins(), target, run, ["test"]))
    reporter = _Lines()
    with target.session("test", "run s"):
        outcome = execute(spec, target, run, reporter=reporter)
    assert outcome.ok, [f["error"] for f in outcome.failures]
    records = list(run.results())
    assert {r["endpoints"]["client"]["name"] for r in records} == {"h1-p1"}
    verdicts = {v.claim.id: v for v in evaluate(spec.claims, summarize_cells(records),
                                                records, spec.design())}
    # 20000 rules against none: decided at the first look, after the minimum
    assert verdicts["R"].verdict in DECIDED and verdicts["R"].look == 3, verdicts["R"]
    reps: dict[str, int] = {}
    for r in records:
        reps[r["cell_id"]] = max(reps.get(r["cell_id"], 0), r["repetition"])
    rule_cells = {c for c in reps if "netperf" in c}
    assert {reps[c] for c in rule_cells} == {3}       # none measured past the decision
    throughput = {c for c in reps if "iperf3" in c}
    t = verdicts["T"]
    # T's cells went on exactly until T was decided, or to the cap
    assert {reps[c] for c in throughput} == {t.look if t.verdict in DECIDED
                                             else spec.repetition_cap}
    state = run.read_state()
    assert state["looks"]["3"] == (["T"] if reps[next(iter(throughput))] > 3 else [])
    assert any(line.startswith("after round 3:") for line in reporter.lines)
    assert not _instance_up("cnl.seq.1") and not _instance_up("cnl.seq.2")
