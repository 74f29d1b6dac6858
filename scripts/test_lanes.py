#!/usr/bin/env python3
"""`make test`: the whole suite in lanes, so that the 2-core build machines spend the
lab tests' fixed-length measurements (iperf3 -t 1 takes one second whatever else runs)
on the tests that need no lab.

Lanes (tests/conftest.py decides each test's from its marks and fixtures):
1. side by side: ``lab`` (netns labs, iperf3/netperf; one at a time, one lab lock), and
   ``nodes`` + ``any`` (emulated SSH nodes in namespaces of their own; Python, Ansible
   on localhost, static checks). Nothing of one is visible to the other: other
   namespaces, bridges, bpffs mounts, and the lab tests' leftover checks look only at
   the lab's processes (tests/processes.py).
2. then ``alone``, with nothing beside it: the tests that judge measured values or a
   whole machine's idle CPU, which a test running beside them would change.

The lab lane prints as it goes; the other lane's output follows when both have ended.
Arguments are passed to every pytest (``-x``, ``-k EXPR``, ...). Exit status: the first
lane that failed, else 0. `pytest` alone still runs every test in one process.

    .venv/bin/python scripts/test_lanes.py [pytest arguments]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest"]
NO_TESTS_COLLECTED = 5      # pytest's exit status when a selection holds no test


def _start(lanes: list[str], extra: list[str], output: int | None) -> subprocess.Popen[bytes]:
    argv = [*PYTEST, *(f"--lane={lane}" for lane in lanes), *extra]
    print(f"test lanes: {' + '.join(lanes)}: {' '.join(argv[1:])}", flush=True)
    return subprocess.Popen(argv, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _ok(code: int) -> bool:
    return code in (0, NO_TESTS_COLLECTED)


def main(extra: list[str]) -> int:
    running: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        for proc in running:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in running:
            proc.wait()
        print(f"test lanes: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    timings: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryFile() as side_log:
        side = _start(["nodes", "any"], extra, side_log.fileno())
        lab = _start(["lab"], extra, None)
        running += [side, lab]
        lab_code = lab.wait()
        timings.append(f"lab {time.monotonic() - started:.0f} s")
        side_code = side.wait()
        timings.append(f"nodes+any {time.monotonic() - started:.0f} s (beside it)")
        side_log.seek(0)
        sys.stdout.flush()
        print("\n==== lanes nodes + any ====", flush=True)
        sys.stdout.buffer.write(side_log.read())
        sys.stdout.flush()
    codes = {"lab": lab_code, "nodes+any": side_code}
    print("\n==== lane alone ====", flush=True)   # also after a failure: every failure shown
    alone_started = time.monotonic()
    alone = _start(["alone"], extra, None)
    running.append(alone)
    codes["alone"] = alone.wait()
    timings.append(f"alone {time.monotonic() - alone_started:.0f} s")
    failed = [lane for lane, code in codes.items() if not _ok(code)]
    print(f"\ntest lanes: {', '.join(timings)}; total {time.monotonic() - started:.0f} s; "
          + (f"FAILED: {', '.join(failed)}" if failed else "all passed"), flush=True)
    return next((codes[lane] for lane in failed), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
