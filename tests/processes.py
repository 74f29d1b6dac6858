"""Processes a lab test may find left behind, told apart from those of tests running
beside it (scripts/test_lanes.py runs the lab's tests beside the emulated SSH nodes'):
live ones only (a zombie is reaped by PID 1, which on some build machines never reaps),
and none inside an emulated node's namespace (tests/sshnodes.py: ``cnlssh*``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

NODE_NAMESPACES = "cnlssh*"     # tests/sshnodes.py: every set's namespaces carry it


def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _node_namespaces() -> set[int]:
    return {ino for p in Path("/run/netns").glob(NODE_NAMESPACES)
            if (ino := _netns_inode(str(p))) is not None}


def live(pattern: str, full_command: bool = False) -> list[str]:
    """``pgrep -a PATTERN`` (``-f``: against the whole command line): "pid command" of
    every live process that matches, except the emulated nodes'."""
    argv = ["pgrep", "-a", *(["-f"] if full_command else []), pattern]
    found = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    nodes = _node_namespaces()
    kept = []
    for line in found.splitlines():
        pid = line.split(maxsplit=1)[0]
        if "<defunct>" in line or _netns_inode(f"/proc/{pid}/ns/net") in nodes:
            continue
        kept.append(line)
    return kept
