"""Shared fixtures: root detection, an isolated lab state dir, the cnilab CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0


# Lanes: which tests may run beside which (scripts/test_lanes.py runs "lab" beside
# "nodes" and "any", then "alone" by itself; plain `pytest` runs every test in one go).
#   lab    builds netns labs and runs iperf3/netperf (one lab lock, one at a time)
#   nodes  emulated SSH nodes (tests/sshnodes.py: their own namespaces, bridge, sshd)
#   any    neither: Python, Ansible on localhost, static checks
#   alone  judges measured values or a whole machine's idle CPU, which a test running
#          beside it would change: marked ``alone``, run with nothing else
LANES = ("lab", "nodes", "any", "alone")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lane", action="append", choices=LANES, default=[],
                     help="run only the tests of this lane (repeatable); default: all")


def lane_of(item: pytest.Item) -> str:
    """The lane a test belongs to, from its marks and what it uses (not from a list kept
    by hand, so a new test lands in the right lane)."""
    if item.get_closest_marker("alone"):
        return "alone"
    module = getattr(item, "module", None)
    if "nodes" in getattr(item, "fixturenames", ()) or hasattr(module, "SshNodes"):
        return "nodes"
    if item.get_closest_marker("root"):
        return "lab"
    return "any"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs root: network namespaces, iptables")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip)
    lanes = set(config.getoption("lane"))
    if lanes:
        chosen = [item for item in items if lane_of(item) in lanes]
        kept = {id(item) for item in chosen}
        config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
        items[:] = chosen


@pytest.fixture
def cli() -> object:
    """Run the installed ``cnilab`` console script; returns CompletedProcess."""

    def run(*args: str, timeout: float = 600, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("cnilab")
        return subprocess.run([str(exe), *args], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})}, check=False)

    return run


@pytest.fixture(scope="module")
def nodes(request: pytest.FixtureRequest) -> Iterator[object]:
    """Emulated SSH nodes with Debian 12's facts, for the tests that drive the
    real-cluster roles over SSH (tests/sshnodes.py): cp1, w1, w2, or the module's
    ``NODE_NAMES`` (every node adds to each playbook's time). One set per test module:
    the modules change node state (baselines, MTUs, links) in ways that another module
    must not inherit; a set costs about a second."""
    if not IS_ROOT:
        pytest.skip("needs root: network namespaces and sshd")
    from sshnodes import SshNodes

    names = list(getattr(request.module, "NODE_NAMES", ["cp1", "w1", "w2"]))
    with SshNodes(names, images={n: "debian-12" for n in names}) as emulated:
        yield emulated


@pytest.fixture
def clean_lab() -> Iterator[None]:
    """Guarantee no lab, of any instance, before and after a test that builds one (and
    fail on leftovers)."""
    from cnilab.lab import core

    core.down_all()
    yield
    left = core.leftovers(None)
    core.down_all()
    assert not any(left.values()), f"lab left objects behind: {left}"
