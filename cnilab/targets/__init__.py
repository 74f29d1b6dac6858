"""Targets: where an experiment runs (the netns lab, or a kubeadm cluster's inventory)."""

from __future__ import annotations

from pathlib import Path

from cnilab import paths
from cnilab.errors import InputError
from cnilab.targets.base import Target

TARGETS = ("netns", "vagrant")


def make_target(kind: str, inventory: Path | None = None, profile: str = "current",
                replace_kube_proxy: bool = False, *, hosts: int = 2,
                pods_per_host: int = 4, replace_lab: bool = False) -> Target:
    """The target for ``--lab KIND`` / ``--inventory FILE``: an inventory makes it a
    cluster; ``vagrant`` is the cluster of the Vagrant lab's inventory. ``hosts`` and
    ``pods_per_host`` are the spec's topology, which the netns lab builds (a cluster
    has the nodes its inventory names)."""
    if kind == "vagrant" and inventory is None:
        inventory = paths.project_root() / "inventories" / "vagrant" / "hosts.yml"
        if not inventory.is_file():
            raise InputError(f"--lab vagrant: {inventory} does not exist; run `vagrant up` "
                             "and `cnilab inventory vagrant` first")
    if inventory is not None:
        from cnilab.targets.cluster import ClusterTarget

        return ClusterTarget(inventory, profile, replace_kube_proxy=replace_kube_proxy)
    if kind == "netns":
        from cnilab.targets.netns import NetnsTarget

        return NetnsTarget(hosts, pods_per_host, replace_lab=replace_lab)
    raise InputError(f"--lab must be one of {', '.join(TARGETS)}, got '{kind}'")
