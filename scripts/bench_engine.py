#!/usr/bin/env python3
"""Benchmark: is the engine an honest instrument? Prints figures; asserts nothing.

1. Overhead: the same iperf3 TCP test run by hand (``ip netns exec ... iperf3``) and
   through cnilab's ``measure`` (CPU sampling, interface counters, raw files), alternated
   on one lab, REPEAT pairs. Target: cnilab / hand >= 0.97.
2. Pinning: the same cells with ``cpu_pinning`` auto and off, alternated, to check the
   default (RR: one CPU for both ends; stream: different CPUs).
3. Spread: coefficient of variation of every cell of a short matrix, so that a reader
   knows how many repetitions a given difference needs on this machine.

Needs root; builds and removes the netns lab itself.

    .venv/bin/python scripts/bench_engine.py [--repeat 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cnilab.bench.engine import Measurement, measure
from cnilab.bench.executor import NetnsExecutor
from cnilab.lab import core
from cnilab.lab.plan import make_plan
from cnilab.rundir import RunDir
from cnilab.spec import Cell
from cnilab.stats import summarize
from cnilab.targets.netns import NetnsTarget


def build(cni: str, mode: str) -> NetnsTarget:
    core.down()
    plan = make_plan(cni, mode)
    core.preflight(plan)
    core.ensure_hosts(plan)
    core.ensure_datapath(plan)
    core.ensure_pods(plan)
    core.ensure_endpoints(plan)
    target = NetnsTarget()
    target.plan = plan
    return target


def hand_iperf3(target: NetnsTarget, placement: str, seconds: int) -> float:
    """iperf3 exactly as a person would run it: server, client, read the JSON."""
    client, server = target.endpoints(placement)
    srv = subprocess.Popen(["ip", "netns", "exec", str(server.netns), "iperf3", "-s", "-1",
                            "-B", server.listen_address, "-p", "5201"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    out = subprocess.run(["ip", "netns", "exec", str(client.netns), "iperf3", "-c",
                          server.address, "-p", "5201", "-t", str(seconds), "-O", "0", "-J"],
                         capture_output=True, text=True, check=True).stdout
    srv.wait(timeout=10)
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9


def engine_value(target: NetnsTarget, run: RunDir, seq: int, placement: str, suite: str,
                 seconds: int, pin: bool) -> float:
    params: tuple[tuple[str, Any], ...] = (("duration_s", seconds),)
    if suite == "iperf3-tcp":
        params = (("duration_s", seconds), ("omit_s", 0))
    assert target.plan is not None
    cell = Cell(target.plan.cni, target.plan.mode, placement, suite, params)
    client, server = target.endpoints(placement)
    record = measure(NetnsExecutor(), Measurement(cell, seq), client, server, run, seq, pin=pin)
    if record["status"] != "ok":
        raise SystemExit(f"measurement failed: {record['error']}")
    metric = "throughput_gbps" if suite == "iperf3-tcp" else "transactions_per_s"
    return float(record["metrics"][metric])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    seq = 0
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp))
        (Path(tmp) / "raw").mkdir()
        try:
            target = build("flannel", "vxlan")
            print(f"1. overhead, flannel/vxlan inter-host iperf3 TCP {args.seconds} s, "
                  f"{args.repeat} alternated pairs, no pinning on either side")
            ratios = []
            for _ in range(args.repeat):
                seq += 1
                hand = hand_iperf3(target, "inter-host", args.seconds)
                mine = engine_value(target, run, seq, "inter-host", "iperf3-tcp", args.seconds,
                                    pin=False)
                ratios.append(mine / hand)
                print(f"   hand {hand:6.2f} Gbit/s   cnilab {mine:6.2f} Gbit/s   "
                      f"ratio {mine / hand:.3f}")
            print(f"   mean ratio cnilab/hand {statistics.fmean(ratios):.3f} "
                  f"(median {statistics.median(ratios):.3f}; target >= 0.97)")

            print(f"\n2. pinning, {args.repeat} alternated pairs (auto vs off)")
            for placement, suite in (("inter-host", "iperf3-tcp"),
                                     ("intra-host", "iperf3-tcp"),
                                     ("inter-host", "netperf-tcp-rr"),
                                     ("intra-host", "netperf-tcp-rr")):
                values: dict[bool, list[float]] = {True: [], False: []}
                for _ in range(args.repeat):
                    for pin in (True, False):
                        seq += 1
                        values[pin].append(engine_value(target, run, seq, placement, suite,
                                                        args.seconds, pin))
                on, off = summarize(values[True]), summarize(values[False])
                print(f"   {placement:10} {suite:15} "
                      f"auto {on.mean:10.2f} (CV {100 * (on.cv or 0):4.1f} %)"
                      f"   off {off.mean:10.2f} (CV {100 * (off.cv or 0):4.1f} %)"
                      f"   auto/off {on.mean / off.mean:.3f}")

            print(f"\n3. spread per cell ({args.repeat} repetitions, default pinning)")
            for cni, mode in (("flannel", "vxlan"), ("calico", "bgp")):
                target = build(cni, mode)
                for placement in ("intra-host", "inter-host", "underlay"):
                    for suite in ("iperf3-tcp", "netperf-tcp-rr"):
                        vals = []
                        for _ in range(args.repeat):
                            seq += 1
                            vals.append(engine_value(target, run, seq, placement, suite,
                                                     args.seconds, pin=True))
                        s = summarize(vals)
                        rel = (s.ci95_half_width or 0) / s.mean
                        print(f"   {cni}/{mode:5} {placement:10} {suite:15} mean {s.mean:10.2f}"
                              f"  CV {100 * (s.cv or 0):5.1f} %  CI +-{100 * rel:5.1f} %")
        finally:
            core.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
