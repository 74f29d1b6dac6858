"""`make test`'s lanes (tests/conftest.py, scripts/test_lanes.py): every test in exactly one
lane, the emulated-node tests never beside one another's bridge names in the lab lane,
the ``alone`` tests by themselves, and a failing lane fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANES = ("lab", "nodes", "any", "alone")


def _collected(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {line for line in proc.stdout.splitlines() if "::" in line}


def test_every_test_is_in_exactly_one_lane() -> None:
    every = _collected()
    lanes = {lane: _collected(f"--lane={lane}") for lane in LANES}
    assert set().union(*lanes.values()) == every
    assert sum(len(tests) for tests in lanes.values()) == len(every)
    # emulated SSH nodes (one bridge name per set) run in one lane, one at a time
    assert all(t.startswith(("tests/test_cluster_cli.py", "tests/test_node_reset.py",
                             "tests/test_ssh_shell.py", "tests/test_bench_tools.py",
                             "tests/test_cluster_phases.py", "tests/test_collect.py"))
               for t in lanes["nodes"])
    assert any(t.startswith("tests/test_node_reset.py") for t in lanes["nodes"])
    # the lab's builds and measurements, one lab lock
    assert "tests/test_demo.py::test_demo_compares_datapaths_and_ends_with_the_verdicts" \
        in lanes["lab"]
    assert not any(t.startswith("tests/test_datapaths.py") for t in lanes["any"])
    # what judges a whole machine's idle CPU runs with nothing beside it
    assert "tests/test_cluster_target.py::test_engine_walks_the_matrix_through_the_cluster_" \
        "target" in lanes["alone"]
    assert "tests/test_lanes.py::test_every_test_is_in_exactly_one_lane" in lanes["any"]


def test_a_failing_lane_fails_the_run_and_an_empty_one_does_not() -> None:
    runner = [sys.executable, str(ROOT / "scripts" / "test_lanes.py"), "-p", "no:cacheprovider"]
    empty = subprocess.run([*runner, "-k", "no_test_is_named_like_this"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, check=False)
    assert empty.returncode == 0, empty.stdout[-2000:]
    assert empty.stdout.strip().splitlines()[-1].endswith("all passed")
    usage = subprocess.run([*runner, "--no-such-pytest-option"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, check=False)
    assert usage.returncode == 4, usage.stdout[-2000:]      # pytest's usage error
    last = usage.stdout.strip().splitlines()[-1]
    assert last.endswith("FAILED: lab, nodes+any, alone"), last
