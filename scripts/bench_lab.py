#!/usr/bin/env python3
"""Benchmark: netns lab up + down per mode, called directly and through Ansible (target:
through Ansible <= 2 s per mode in a study; kube-router's GoBGP waits a random 5-10 s
for its first connect, whatever calls it).

Three columns of up+down seconds per mode (median [min-max] over REPEAT):
- direct: the playbook's steps called in this process (build, verify, teardown);
- ansible: one `lab up` and one `lab down` playbook run through ansible-runner, as
  `cnilab lab up`/`down` do;
- study: every mode built side by side in one playbook run and torn down in another,
  as `cnilab run`/`reproduce` do, divided by the number of modes.
The difference between the first two is what Ansible costs. Needs root. Prints
figures; asserts nothing.

    .venv/bin/python scripts/bench_lab.py [--repeat 3] [--hosts 2] [--pods 2] [--skip-bgp]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cnilab.ansible_engine import Progress, run_playbook
from cnilab.lab import ansible_steps, core
from cnilab.lab.datapaths import implemented_modes
from cnilab.lab.plan import make_plan
from cnilab.spec import ModeRef
from cnilab.targets.netns import NetnsTarget

PLAYBOOK = "lab-netns.yml"


def direct(cni: str, mode: str, hosts: int, pods: int) -> float:
    plan = make_plan(cni, mode, hosts, pods)
    started = time.monotonic()
    ansible_steps.run_step("present", plan.to_dict(), verify=True)
    ansible_steps.run_step("absent", None, prefix=plan.prefix)
    return time.monotonic() - started


def through_ansible(cni: str, mode: str, hosts: int, pods: int, workdir: Path) -> float:
    plan = make_plan(cni, mode, hosts, pods)
    quiet = Progress(io.StringIO())
    started = time.monotonic()
    run_playbook(PLAYBOOK, private_data_dir=workdir, progress=quiet,
                 extravars={"lab_netns_state": "present", "lab_netns_plan": plan.to_dict()},
                 env=core.builder_env(plan.prefix))
    run_playbook(PLAYBOOK, private_data_dir=workdir, progress=quiet,
                 extravars={"lab_netns_state": "absent", "lab_netns_prefix": plan.prefix})
    return time.monotonic() - started


def study(modes: list[tuple[str, str]], hosts: int, pods: int, workdir: Path) -> float:
    """Seconds per mode to bring every mode up side by side and down again."""
    target = NetnsTarget(hosts, pods, progress=Progress(io.StringIO()), instance="bench")
    refs = [(ModeRef(cni, mode), slot) for slot, (cni, mode) in enumerate(modes, start=1)]
    started = time.monotonic()
    built = target.up_side_by_side(refs, workdir=workdir)
    target.down_side_by_side(list(built.values()), workdir=workdir)
    return (time.monotonic() - started) / len(modes)


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--pods", type=int, default=2)
    parser.add_argument("--skip-bgp", action="store_true",
                        help="leave out kube-router (GoBGP's random 5-10 s first connect)")
    args = parser.parse_args()
    core.down_all()
    modes = [m for m in implemented_modes() if not (args.skip_bgp and m[0] == "kube-router")]
    print(f"netns lab up+down, {args.hosts} hosts x {args.pods} pods, {args.repeat} repeats "
          "(seconds: median [min-max])")
    print(f"{'mode':<18} {'direct':>18} {'ansible':>18} {'overhead':>9}")
    overheads = []
    with tempfile.TemporaryDirectory() as tmp:
        for cni, mode in modes:
            plain = [direct(cni, mode, args.hosts, args.pods) for _ in range(args.repeat)]
            ansible = [through_ansible(cni, mode, args.hosts, args.pods, Path(tmp))
                       for _ in range(args.repeat)]
            overhead = statistics.median(ansible) - statistics.median(plain)
            overheads.append(overhead)
            print(f"{cni + '/' + mode:<18} {fmt(plain):>18} {fmt(ansible):>18} "
                  f"{overhead:>8.2f}s")
        per_mode = [study(modes, args.hosts, args.pods, Path(tmp)) for _ in range(args.repeat)]
    print(f"Ansible's cost per `lab up` + `lab down`: median {statistics.median(overheads):.2f} s")
    print(f"a study's {len(modes)} modes side by side, through Ansible: {fmt(per_mode)} s per "
          "mode (one playbook run up, one down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
