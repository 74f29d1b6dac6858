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


def plugin_for(name: str, mode: str) -> ModuleType:
    """The plugin's module, after checking ``mode`` is one of its modes."""
    module = plugin(name)
    if mode not in module.modes():
        raise InputError(f"--mode {mode}: {name} modes are {', '.join(module.modes())}")
    return module


def can_replace_kube_proxy(name: str) -> bool:
    """Whether the plugin has a mode of serving Services without kube-proxy."""
    return bool(plugin(name).REPLACES_KUBE_PROXY)
