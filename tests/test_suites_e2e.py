"""Every suite at every placement on the netns lab (root), through the engine's measure()."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cnilab.bench.engine import Measurement, measure
from cnilab.bench.placements import PLACEMENTS
from cnilab.bench.suites import NODE_KINDS, SUITES
from cnilab.lab import core
from cnilab.lab.plan import LabPlan, make_plan
from cnilab.rundir import RunDir
from cnilab.spec import Cell
from cnilab.targets.netns import NetnsTarget

pytestmark = [pytest.mark.root, pytest.mark.e2e]

SHORT = {"duration_s": 1}
# netserver holds every connection-per-transaction test 4 s past its end (netperf's
# PAD_TIME: it cannot tell when the client stops connecting), so TCP_CRR runs only where
# its per-connection work differs: across the overlay and through the Service's DNAT
# (conntrack entry per connection); its tool and flags are those of TCP_RR, which runs
# at every placement
CONNECTION_PER_TRANSACTION = {"netperf-tcp-crr": ("inter-host", "service")}


def _short(suite_name: str) -> dict[str, int]:
    """One second per measurement, nothing omitted (iperf3's -O would double it)."""
    return {**SHORT, **({"omit_s": 0} if "omit_s" in SUITES[suite_name].params else {})}


@pytest.fixture(scope="module")
def lab() -> Iterator[LabPlan]:
    core.down()
    plan = make_plan("flannel", "vxlan")
    core.preflight(plan)
    for step in (core.ensure_hosts, core.ensure_datapath, core.ensure_pods,
                 core.ensure_endpoints):
        step(plan)
    yield plan
    core.down()
    assert not any(core.leftovers(None).values())


# pod-startup and agent-memory have no traffic placement: tests/test_datapaths.py,
# test_sweeps_e2e.py and test_cluster_target.py
@pytest.mark.parametrize(("suite_name", "placement"), [
    (name, placement) for name in sorted(n for n, s in SUITES.items() if s.kind not in NODE_KINDS)
    for placement in CONNECTION_PER_TRANSACTION.get(name, PLACEMENTS)])
def test_suite_at_placement(lab: LabPlan, tmp_path: Path, suite_name: str,
                            placement: str) -> None:
    target = NetnsTarget()
    target.plan = lab
    client, server = target.endpoints(placement)
    run = RunDir(tmp_path)
    (tmp_path / "raw").mkdir()
    cell = Cell(lab.cni, lab.mode, placement, suite_name,
                tuple(sorted(_short(suite_name).items())))
    record = measure(target.executor(), Measurement(cell, 1), client, server, run, 1)
    assert record["status"] == "ok", record["error"]
    m = record["metrics"]
    suite = SUITES[suite_name]
    assert (tmp_path / record["raw"]["client"]).is_file()
    assert record["params"]["duration_s"] == 1 and record["commands"]["client"][0] == suite.tool
    # what the estimate counts for it (cnilab/estimate.py) is what it took: for TCP_CRR the
    # 4 s netserver holds on past the test (netperf's PAD_TIME)
    expected = suite.wall_seconds(record["params"])
    assert expected - 0.3 <= record["elapsed_s"] <= expected + 1.5, (expected, record["elapsed_s"])
    if suite.primary_metric == "throughput_gbps":
        assert 0.01 < m["throughput_gbps"] < 500
    else:
        assert 100 < m["transactions_per_s"] < 10_000_000
        for p in ("p50", "p90", "p99"):
            assert m[f"latency_{p}_us"] > 0  # -j was passed: percentiles present
    if suite_name == "iperf3-udp":
        assert m["lost_percent"] is not None and m["jitter_ms"] is not None
    if suite.tool == "netperf":
        assert m["local_cpu_percent"] >= 0 and m["remote_cpu_percent"] >= 0
