#!/usr/bin/env python3
"""Benchmark: what one command on a cluster node costs through cnilab's SSH transport
(`cnilab.cluster.ssh.NodeShell`: one persistent connection per node) against a new
`ssh` process per command, the way a naive wrapper would do it. The benchmark engine
issues tens of such commands per measurement (CPU counters before and after, interface
counters, server start and pid, listening checks, kill), so this is the overhead each
measurement carries on a cluster. Prints figures; asserts nothing.

    .venv/bin/python scripts/bench_cluster_transport.py --inventory FILE [--host NAME]
    .venv/bin/python scripts/bench_cluster_transport.py --emulated      # root: emulated nodes
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnilab.cluster.ssh import NodeShell  # noqa: E402
from cnilab.inventory import Node, load_inventory  # noqa: E402


def _timed(action: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def _line(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return (f"{label:<48} median {statistics.median(ordered):8.2f} ms   p90 {p90:8.2f} ms   "
            f"(n={len(ordered)})")


def _ssh_argv(node: Node, command: list[str]) -> list[str]:
    key = node.vars.get("ansible_ssh_private_key_file")
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-p", str(node.vars.get("ansible_port", 22))]
    if key:
        argv += ["-i", str(key)]
    return [*argv, f"{node.vars.get('ansible_user', 'root')}@{node.address}", *command]


def measure(node: Node, repeat: int) -> None:
    started = time.perf_counter()
    shell = NodeShell(node)
    print(f"node {node.name} ({node.address}): connect "
          f"{(time.perf_counter() - started) * 1000.0:.1f} ms")
    try:
        print(_line("NodeShell.run(['true'])", _timed(lambda: shell.run(["true"], 10.0),
                                                       repeat)))
        print(_line("NodeShell.run(['cat', '/proc/stat'])",
                    _timed(lambda: shell.run(["cat", "/proc/stat"], 10.0), repeat)))
        print(_line("NodeShell.read_file('/proc/stat') (open shell)",
                    _timed(lambda: shell.read_file("/proc/stat"), repeat)))

        def pid_line() -> None:
            session = shell.start(["sh", "-c", "echo $$; exec sleep 5"])
            pid = session.first_line(10.0)
            shell.run(["kill", str(pid)], 10.0)
            session.communicate(10.0)

        print(_line("start + first line (pid) + kill", _timed(pid_line, max(5, repeat // 2))))
        print(_line("new ssh process per command ('true')",
                    _timed(lambda: subprocess.run(_ssh_argv(node, ["true"]), check=True,
                                                  capture_output=True), max(5, repeat // 2))))
        offset, uncertainty = shell.clock_offset()
        print(f"{'clock offset (node - this machine)':<48} {offset * 1000.0:+8.3f} ms   "
              f"uncertainty ±{uncertainty * 1000.0:.3f} ms")
    finally:
        shell.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", help="a cluster inventory (real nodes)")
    parser.add_argument("--host", help="which host of the inventory (default: the first)")
    parser.add_argument("--emulated", action="store_true",
                        help="emulated nodes on this machine (root; tests/sshnodes.py)")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    if args.emulated:
        sys.path.insert(0, str(ROOT / "tests"))
        import tempfile

        from sshnodes import SshNodes

        with SshNodes(["bench1", "bench2"]) as nodes, tempfile.TemporaryDirectory() as tmp:
            inventory = nodes.inventory(Path(tmp) / "hosts.yml")
            print("emulated nodes: network namespaces with their own sshd on this machine")
            measure(load_inventory(inventory)[0], args.repeat)
        return 0
    if not args.inventory:
        parser.error("give --inventory FILE or --emulated")
    chosen = [n for n in load_inventory(Path(args.inventory))
              if args.host in (None, n.name)]
    if not chosen:
        parser.error(f"--host {args.host}: not in {args.inventory}")
    measure(chosen[0], args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
