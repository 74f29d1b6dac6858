"""Targets: where an experiment runs (the netns lab now; Vagrant and inventories later)."""

from __future__ import annotations

from cnilab.errors import InputError
from cnilab.targets.base import Target

TARGETS = ("netns",)


def make_target(kind: str) -> Target:
    """The target for ``--lab KIND``."""
    if kind == "netns":
        from cnilab.targets.netns import NetnsTarget

        return NetnsTarget()
    raise InputError(f"--lab must be one of {', '.join(TARGETS)}, got '{kind}'")
