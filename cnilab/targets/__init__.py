"""Targets: where an experiment runs (the netns lab, or a kubeadm cluster's inventory)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnilab import paths
from cnilab.errors import InputError
from cnilab.targets.base import Target

if TYPE_CHECKING:     # a type only: importing ansible_runner costs every importer ~0.1 s
    from cnilab.ansible_engine import Progress

TARGETS = ("netns", "netns:NAME", "vagrant")


def parse_lab(value: str) -> tuple[str, str]:
    """``--lab`` as (kind, instance): ``netns``, ``netns:NAME`` (a named lab instance,
    side by side with others) or ``vagrant``."""
    kind, _, instance = value.partition(":")
    if kind not in ("netns", "vagrant") or (instance and kind != "netns") or \
            (not instance and value.endswith(":")):
        raise InputError(f"--lab must be one of {', '.join(TARGETS)}, got {value!r}")
    if instance:
        from cnilab.lab.plan import check_instance  # names only: no lab code runs

        check_instance(instance)
    return kind, instance


def make_target(lab: str, inventory: Path | None = None, profile: str = "current",
                replace_kube_proxy: bool = False, *, hosts: int = 2,
                pods_per_host: int = 4, replace_lab: bool = False,
                progress: Progress | None = None) -> Target:
    """The target for ``--lab KIND`` / ``--inventory FILE``: an inventory makes it a
    cluster; ``vagrant`` is the cluster of the Vagrant lab's inventory. ``hosts`` and
    ``pods_per_host`` are the spec's topology, which the netns lab builds (a cluster
    has the nodes its inventory names)."""
    kind, instance = parse_lab(lab)
    if kind == "vagrant" and inventory is None:
        inventory = paths.project_root() / "inventories" / "vagrant" / "hosts.yml"
        if not inventory.is_file():
            raise InputError(f"--lab vagrant: {inventory} does not exist; run `vagrant up` "
                             "and `cnilab inventory vagrant` first")
    if inventory is not None:
        from cnilab.targets.cluster import ClusterTarget

        return ClusterTarget(inventory, profile, replace_kube_proxy=replace_kube_proxy,
                             progress=progress)
    if kind == "netns":
        from cnilab.targets.netns import NetnsTarget

        return NetnsTarget(hosts, pods_per_host, progress=progress, replace_lab=replace_lab,
                           instance=instance)
    raise InputError(f"--lab must be one of {', '.join(TARGETS)}, got '{kind}'")
