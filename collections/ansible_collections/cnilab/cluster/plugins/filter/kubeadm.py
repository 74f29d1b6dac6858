"""Ansible filters over cnilab.cluster (the logic and its tests live there)."""

from __future__ import annotations

from typing import Any

from cnilab.cluster import containerd, kubeadm, verify


def _plain(value: Any) -> Any:
    """Ansible hands strings over as tagged ``str`` subclasses that YAML dumpers refuse."""
    return value.encode("utf-8").decode("utf-8") if isinstance(value, str) else value


def kubeadm_init_config(api: str, **kwargs: Any) -> str:
    return kubeadm.render(kubeadm.init_documents(
        api=_plain(api), **{k: _plain(v) for k, v in kwargs.items()}))


def kubeadm_join_config(api: str, **kwargs: Any) -> str:
    return kubeadm.render(kubeadm.join_documents(
        api=_plain(api), **{k: _plain(v) for k, v in kwargs.items()}))


def kubeadm_skip_flags(api: str, skip_kube_proxy: bool) -> list[str]:
    return kubeadm.skip_phases_flag(_plain(api), bool(skip_kube_proxy))


def containerd_config(version: str, sandbox_image: str) -> str:
    return containerd.config_toml(_plain(version), _plain(sandbox_image))


def containerd_problems(dump: str, version: str, sandbox_image: str,
                        config_file: str = "") -> list[str]:
    return containerd.loaded_problems(_plain(dump), _plain(version), _plain(sandbox_image),
                                      _plain(config_file))


def cluster_problems(listing: dict[str, Any], phase: str, expected: dict[str, str],
                     control_plane: list[str]) -> list[str]:
    """``kubectl get nodes,pods -n kube-system -o json`` judged for ``phase``
    (cnilab.cluster.verify: registered before any CNI, networked after it)."""
    return verify.cluster_problems(listing, _plain(phase),
                                   {str(k): _plain(v) for k, v in expected.items()},
                                   [_plain(n) for n in control_plane])


def daemonset_problems(daemonsets: dict[str, Any], nodes: dict[str, Any]) -> list[str]:
    return verify.daemonset_problems(daemonsets, len(nodes.get("items") or []))


def node_peers(nodes: dict[str, Any], node_ips: dict[str, str], me: str) -> dict[str, list[str]]:
    return verify.node_peers(nodes, {str(k): _plain(v) for k, v in node_ips.items()}, _plain(me))


class FilterModule:
    """cnilab.cluster filters."""

    def filters(self) -> dict[str, Any]:
        return {"kubeadm_init_config": kubeadm_init_config,
                "kubeadm_join_config": kubeadm_join_config,
                "kubeadm_skip_flags": kubeadm_skip_flags,
                "containerd_config": containerd_config,
                "containerd_problems": containerd_problems,
                "cluster_problems": cluster_problems,
                "daemonset_problems": daemonset_problems,
                "node_peers": node_peers}
