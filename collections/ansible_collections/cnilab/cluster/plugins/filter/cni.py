"""Ansible filters over cnilab.cni and cnilab.manifests (logic and tests live there).

They run on the controller: the pinned install file is fetched and verified there
(versions/manifests.lock) and only the patched result travels to the control plane.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnilab.cni import registry
from cnilab.cni.base import ClusterNetwork, ModeOptions
from cnilab.manifests.render import render
from cnilab.network import POD_CIDR


def _plain(value: Any) -> Any:
    """Ansible hands strings over as tagged ``str`` subclasses that YAML dumpers refuse."""
    return value.encode("utf-8").decode("utf-8") if isinstance(value, str) else value


def cni_manifest(cni: str, mode: str, profile: str, node_ips: list[str],
                 mtu: int | None = None, policy: bool = False,
                 replace_kube_proxy: bool = False, from_file: str = "",
                 pod_cidr: str = POD_CIDR, node_mtu: int | None = None,
                 policy_engine: bool = True) -> dict[str, Any]:
    """The patched install file for a mode, with its provenance."""
    network = ClusterNetwork(pod_cidr=_plain(pod_cidr),
                             node_ips=tuple(_plain(ip) for ip in node_ips),
                             mtu=int(mtu) if mtu not in (None, "") else None,
                             node_mtu=int(node_mtu) if node_mtu not in (None, "") else None)
    options = ModeOptions(policy=bool(policy), replace_kube_proxy=bool(replace_kube_proxy),
                          policy_engine=bool(policy_engine))
    rendered = render(_plain(cni), _plain(mode), _plain(profile), network,
                      from_file=Path(_plain(from_file)) if from_file else None,
                      options=options)
    return {"text": rendered.text(network, "from the inventory"), "version": rendered.version,
            "source": rendered.source, "sha256": rendered.source_sha256}


def cni_chart(cni: str, profile: str) -> dict[str, str]:
    """The plugin's pinned Helm chart archive, fetched and verified on the controller
    (versions/manifests.lock): its local path, version and sha256."""
    from cnilab import paths
    from cnilab.manifests import lock
    from cnilab.manifests.render import release

    version, url = release(_plain(cni), _plain(profile))
    cache = paths.project_root() / ".cache" / "manifests"
    _, digest, _ = lock.fetch(url, cache_dir=cache)
    return {"path": str(lock.cached_path(url, cache)), "version": version, "url": url,
            "sha256": digest}


def cni_skips_kube_proxy(cni: str, mode: str, replace_kube_proxy: bool = False) -> bool:
    """The shared interface kubeadm_init reads: is kube-proxy's addon skipped?"""
    plugin = registry.plugin(_plain(cni))
    return bool(plugin.skips_kube_proxy(_plain(mode),
                                        ModeOptions(replace_kube_proxy=bool(replace_kube_proxy))))


def cni_mode_problems(cni: str, mode: str, links: list[dict[str, Any]],
                      routes: list[dict[str, Any]], peers: dict[str, list[str]],
                      pod_cidr: str = POD_CIDR) -> list[str]:
    """The plugin's own mode check (cnilab/cni/<plugin>.py) on one node's ip -j output."""
    plugin = registry.plugin(_plain(cni))
    return list(plugin.mode_problems(
        _plain(mode), links, routes,
        {str(k): (str(v[0]), str(v[1])) for k, v in peers.items()}, _plain(pod_cidr)))


def cni_config_problems(cni: str, mode: str, profile: str, config: dict[str, Any],
                        policy: bool = False, replace_kube_proxy: bool = False,
                        policy_engine: bool = True) -> list[str]:
    """The plugin's check of its agent configuration as read from the cluster, for
    plugins that have one (``config_problems`` in cnilab/cni/<plugin>.py); [] otherwise."""
    from cnilab.manifests.render import release

    version, _ = release(_plain(cni), _plain(profile))
    options = ModeOptions(policy=bool(policy), replace_kube_proxy=bool(replace_kube_proxy),
                          policy_engine=bool(policy_engine))
    return list(registry.plugin(_plain(cni)).config_problems(
        _plain(mode), version, options, {str(k): str(v) for k, v in (config or {}).items()}))


def cni_facts(cni: str) -> dict[str, Any]:
    """The plugin's cluster facts and modes from the catalog (cnilab/catalog/modes.yml):
    how it is installed, its DaemonSets' selector, its state directories."""
    from dataclasses import asdict

    plugin = registry.plugin(_plain(cni))
    return {**asdict(plugin.facts), "state_dirs": list(plugin.facts.state_dirs),
            "modes": list(plugin.modes())}


def with_cni_state_dirs(paths: list[str]) -> list[str]:
    """``paths`` and every plugin's state directories (what node_reset watches)."""
    extra = [d for p in registry.PLUGINS.values() for d in p.facts.state_dirs]
    return list(dict.fromkeys([*map(_plain, paths), *extra]))


def node_ip_mtu(addr_json: str, node_ip: str) -> int | None:
    """The MTU of the interface holding ``node_ip``, from ``ip -j addr show`` (None when
    no interface holds it)."""
    from cnilab.cluster.preflight import nic_of

    nic = nic_of(_plain(addr_json), _plain(node_ip))
    return int(nic["mtu"]) if nic.get("mtu") else None


class FilterModule:
    """cnilab.cluster CNI filters."""

    def filters(self) -> dict[str, Any]:
        return {"cni_manifest": cni_manifest, "cni_facts": cni_facts,
                "with_cni_state_dirs": with_cni_state_dirs,
                "cni_skips_kube_proxy": cni_skips_kube_proxy, "cni_chart": cni_chart,
                "cni_mode_problems": cni_mode_problems,
                "cni_config_problems": cni_config_problems, "node_ip_mtu": node_ip_mtu}
