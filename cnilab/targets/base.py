"""The interface every target implements for the benchmark engine."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnilab.bench.executor import Endpoint, Executor
from cnilab.spec import ModeRef, Spec


class Target(ABC):
    """A place where one (cni, mode) can be brought up, measured and torn down. What a
    target needs beyond the mode (the lab's topology, a cluster's inventory) it is
    given when it is made."""

    kind: str
    emulation: bool
    # Whether a mode whose ``up`` fails is skipped (with the reason) and the run goes on:
    # on a cluster, a plugin that cannot be deployed is a result; in the lab it is a bug.
    skips_modes_that_fail_to_come_up = False

    @contextlib.contextmanager
    def session(self, command: str, owner: str) -> Iterator[None]:
        """Hold the target for the whole of a run: ``command`` says what runs (for a
        second command refused meanwhile), ``owner`` names the run (for what it builds).
        By default a target needs no holding."""
        yield

    def preflight(self, spec: Spec) -> None:
        """Refuse the run before anything is written (a run directory, a machine), when
        this target cannot run ``spec`` at all; modes it cannot bring up one by one are
        ``unavailable`` instead. By default a target accepts every spec."""
        return None

    @abstractmethod
    def up(self, mode: ModeRef, *, workdir: Path) -> None:
        """Bring the mode's datapath up (idempotent; replaces a stale one of the same
        target); ``workdir`` keeps its records (Ansible artifacts). A build that fails or
        is interrupted half-way leaves nothing of itself behind."""

    def unavailable(self, mode: ModeRef) -> str | None:
        """Why this target cannot bring the mode up at all (None: it can). A matrix entry
        it cannot build is skipped and reported, instead of stopping the whole run."""
        return None

    @abstractmethod
    def down(self, *, workdir: Path | None = None) -> None:
        """Remove everything ``up`` created; safe to call at any time."""

    @abstractmethod
    def endpoints(self, placement: str) -> tuple[Endpoint, Endpoint]:
        """(client, server) for a placement."""

    @abstractmethod
    def background_endpoints(self, placement: str) -> tuple[Endpoint, Endpoint]:
        """(client, server) for background load at a placement: a second pair on the same
        hosts, so the load shares the datapath but not the foreground's sockets."""

    @abstractmethod
    def set_path_rules(self, count: int, shape: str) -> int:
        """Hold ``count`` non-matching filter rules of ``shape`` on every host's forwarding
        path (0 removes them); returns the rules loaded per host."""

    @abstractmethod
    def start_pods(self, count: int, attempt: int) -> dict[str, Any]:
        """Start ``count`` pods together on one node, time it, remove them again.

        Returns ``{"metrics": {...}, "pods": [...per-pod details], "errors": [...]}``.
        """

    @abstractmethod
    def executor(self) -> Executor: ...

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """What the datapath looks like now (devices, routes, MTUs), for the run directory."""

    @abstractmethod
    def fidelity(self) -> list[str]:
        """What is real and what is emulated, for reports."""

    def side_by_side(self) -> bool:
        """Whether several modes can stand up at once, each in its own instance (the
        netns lab can; a cluster holds one plugin at a time)."""
        return False

    def for_mode(self, mode: ModeRef, slot: int) -> Target:
        """The target that holds ``mode``: itself, or, on a target that keeps modes side
        by side, the instance for matrix entry ``slot`` (stable across a resume)."""
        return self

    def cannot_measure(self, suite: str) -> str | None:
        """Why this target cannot run ``suite`` at all (None: it can); its cells are then
        left out of the run and the claims on them are not testable, with this reason."""
        return None

    def agent_memory(self) -> dict[str, Any]:
        """The plugin's agent pods (``namespace``, ``name``, ``node``) and each of their
        nodes' kubelet Summary API document: ``{"agents": [...], "summaries": {...}}``
        (cnilab/bench/parsers/kubelet.py reads them)."""
        raise NotImplementedError(f"the {self.kind} target runs no CNI agents")

    def check_free(self, spec: Spec) -> None:
        """Inside ``session``, before anything of the run is written: refuse (InputError)
        when what the run would build is held by someone else. Default: nothing to check."""
        return None

    def up_side_by_side(self, modes: list[tuple[ModeRef, int]], *,
                        workdir: Path) -> dict[ModeRef, Target]:
        """Bring several modes up at once, each in its instance (``for_mode(mode, slot)``),
        and return those instances. Only for a target whose ``side_by_side()`` is true."""
        raise NotImplementedError(f"the {self.kind} target keeps one mode at a time")

    def down_side_by_side(self, targets: list[Target], *, workdir: Path) -> None:
        """Bring down the instances ``up_side_by_side`` returned, at once."""
        for target in targets:
            target.down(workdir=workdir)

    def describe(self) -> dict[str, Any]:
        """What identifies the target beyond its kind (e.g. a cluster's inventory)."""
        return {}
