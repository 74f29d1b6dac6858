#!/usr/bin/env python3
"""Benchmark: netns lab up and down times per mode (target: median up+down <= 3 s;
kube-router <= 12 s, since GoBGP's first connect waits a random 5-10 s).

Builds each implemented mode directly through cnilab.lab.core (the steps the
playbook runs, without Ansible's per-task overhead, which is reported
separately by timing one playbook run), REPEAT times, and prints the median
and range of up, down and up+down, plus the datapath step alone (devices and
peer routing, BGP convergence included), so that the BGP daemons' connect
waits show on their own. Needs root. Prints figures; asserts nothing.

    .venv/bin/python scripts/bench_lab.py [--repeat 5] [--hosts 2] [--pods 2] [--playbook]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cnilab.lab import core
from cnilab.lab.datapaths import implemented_modes
from cnilab.lab.plan import make_plan


def up(cni: str, mode: str, hosts: int, pods: int) -> tuple[float, float]:
    """(total up time, of which the datapath step: devices, peers, BGP convergence)."""
    plan = make_plan(cni, mode, hosts, pods)
    started = time.monotonic()
    core.preflight(plan)
    core.ensure_hosts(plan)
    datapath_started = time.monotonic()
    core.ensure_datapath(plan)
    datapath_s = time.monotonic() - datapath_started
    core.ensure_pods(plan)
    core.ensure_endpoints(plan)
    return time.monotonic() - started, datapath_s


def down() -> float:
    started = time.monotonic()
    core.down()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--pods", type=int, default=2)
    parser.add_argument("--playbook", action="store_true",
                        help="also time one full `lab up`/`lab down` through ansible-runner")
    args = parser.parse_args()
    core.down()
    print(f"netns lab up/down, {args.hosts} hosts x {args.pods} pods, {args.repeat} repeats "
          "(seconds: median [min-max])")
    print(f"{'mode':<16} {'up':>18} {'down':>18} {'up+down':>18} {'datapath+routing':>18}")
    for cni, mode in implemented_modes():
        ups, downs, routing = [], [], []
        for _ in range(args.repeat):
            total, datapath_s = up(cni, mode, args.hosts, args.pods)
            ups.append(total)
            routing.append(datapath_s)
            downs.append(down())
        totals = [u + d for u, d in zip(ups, downs, strict=True)]

        def fmt(v: list[float]) -> str:
            return f"{statistics.median(v):.2f} [{min(v):.2f}-{max(v):.2f}]"

        print(f"{cni + '/' + mode:<16} {fmt(ups):>18} {fmt(downs):>18} {fmt(totals):>18} "
              f"{fmt(routing):>18}")
    if args.playbook:
        from cnilab.ansible_engine import Progress, run_playbook

        plan = make_plan("flannel", "vxlan", args.hosts, args.pods)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            run_playbook("lab-netns.yml", private_data_dir=Path(tmp),
                         extravars={"lab_netns_state": "present",
                                    "lab_netns_plan": plan.to_dict()},
                         progress=Progress(io.StringIO()))
            mid = time.monotonic()
            run_playbook("lab-netns.yml", private_data_dir=Path(tmp),
                         extravars={"lab_netns_state": "absent"},
                         progress=Progress(io.StringIO()))
            end = time.monotonic()
        print(f"through ansible-runner (flannel/vxlan): up {mid - started:.2f} s, "
              f"down {end - mid:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
