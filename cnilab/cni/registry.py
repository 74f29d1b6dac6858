"""Every plugin's real-cluster knowledge, by name (one ``Plugin`` instance each)."""

from __future__ import annotations

from cnilab.cni.base import Plugin
from cnilab.cni.calico import Calico
from cnilab.cni.cilium import CILIUM
from cnilab.cni.flannel import Flannel
from cnilab.cni.kube_router import KubeRouter
from cnilab.cni.weave import Weave
from cnilab.errors import InputError

PLUGINS: dict[str, Plugin] = {p.name: p for p in (Calico(), CILIUM, Flannel(), KubeRouter(),
                                                    Weave())}


def plugin(name: str) -> Plugin:
    if name not in PLUGINS:
        raise InputError(f"--cni {name}: real-cluster support exists for "
                         f"{', '.join(sorted(PLUGINS))}")
    return PLUGINS[name]


def plugin_for(name: str, mode: str) -> Plugin:
    """The plugin, after checking ``mode`` is one of its modes."""
    found = plugin(name)
    if mode not in found.modes():
        raise InputError(f"--mode {mode}: {name} modes are {', '.join(found.modes())}")
    return found


def can_replace_kube_proxy(name: str) -> bool:
    """Whether the plugin has a mode of serving Services without kube-proxy."""
    return plugin(name).facts.replaces_kube_proxy
