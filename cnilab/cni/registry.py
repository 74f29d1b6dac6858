"""Which module holds which plugin's real-cluster knowledge."""

from __future__ import annotations

from types import ModuleType

from cnilab.cni import calico, cilium, flannel, kube_router, weave
from cnilab.errors import InputError

PLUGINS: dict[str, ModuleType] = {"calico": calico, "cilium": cilium, "flannel": flannel,
                                   "kube-router": kube_router, "weave": weave}


def plugin(name: str) -> ModuleType:
    if name not in PLUGINS:
        raise InputError(f"--cni {name}: real-cluster support exists for "
                         f"{', '.join(sorted(PLUGINS))}")
    return PLUGINS[name]
