"""Flannel on real clusters: kube-flannel.yml patched for vxlan or host-gw.

Where its knobs live (kube-flannel.yml of both pinned releases): the ConfigMap
``kube-flannel-cfg`` holds ``net-conf.json``, a JSON document whose ``Network`` is the
pod CIDR (each node's subnet then comes from node.spec.podCIDR, as flanneld runs with
``--kube-subnet-mgr``) and whose ``Backend.Type`` is the mode. The interface is chosen
by flanneld's ``--iface-regex``, which matches interface names *or addresses*: the
node_ip alternation picks the interface carrying node_ip on every node, whatever its
name. v0.12.0 ships one DaemonSet per architecture; every one is patched.

MTU: flannel derives the pod MTU from the chosen interface (minus 50 for VXLAN) and
has no knob in v0.12.0; a forced MTU is refused rather than silently ignored.
"""

from __future__ import annotations

import json
from typing import Any

from cnilab.cni.base import (
    DEFAULT_OPTIONS,
    ClusterNetwork,
    Document,
    ModeOptions,
    Plugin,
    containers,
    find,
)
from cnilab.errors import InputError

BACKENDS = {"vxlan": "vxlan", "host-gw": "host-gw"}
CONFIGMAP = "kube-flannel-cfg"


class Flannel(Plugin):
    name = "flannel"

    def patch(self, documents: list[Document], mode: str, network: ClusterNetwork,
              version: str, options: ModeOptions = DEFAULT_OPTIONS) -> list[Document]:
        self.require(mode, options)
        if options.policy:
            raise InputError("flannel enforces no network policy")
        where = f"kube-flannel.yml {version}"
        config = find(documents, "ConfigMap", CONFIGMAP, where)
        net_conf = json.loads(config["data"]["net-conf.json"])
        net_conf["Network"] = network.pod_cidr
        backend = {"Type": BACKENDS[mode]}
        if network.mtu is not None:
            raise InputError(f"flannel {version} has no MTU setting: it derives the pod MTU "
                             "from the node interface; leave the MTU to the plugin (auto)")
        net_conf["Backend"] = backend
        config["data"]["net-conf.json"] = json.dumps(net_conf, indent=2) + "\n"
        daemonsets = [d for d in documents if d.get("kind") == "DaemonSet"
                      and containers(d, "kube-flannel")]
        if not daemonsets:
            raise InputError(f"{where}: no DaemonSet runs a kube-flannel container: the "
                             "upstream file changed shape; update the patcher")
        for daemonset in daemonsets:
            for container in containers(daemonset, "kube-flannel"):
                if "--kube-subnet-mgr" not in (container.get("args") or []):
                    raise InputError(f"{where}: container kube-flannel of "
                                     f"{daemonset['metadata']['name']} runs without "
                                     "--kube-subnet-mgr: the patcher assumes it")
                args = [a for a in container["args"] if not a.startswith("--iface")]
                container["args"] = [*args, f"--iface-regex={network.node_ip_regex()}"]
        return documents

    def mode_problems(self, mode: str, links: list[dict[str, Any]], routes: list[dict[str, Any]],
                      peers: dict[str, tuple[str, str]], pod_cidr: str) -> list[str]:
        """Whether this node's datapath is ``mode``'s, from ``ip -j -d link`` and
        ``ip -j route`` on the node; ``peers`` maps every other node to (node_ip, podCIDR).
        One line per problem; empty means the intended mode is the one running."""
        problems = []
        vxlan = next((link for link in links if link.get("ifname") == "flannel.1"), None)
        if mode == "vxlan":
            if vxlan is None:
                problems.append("no flannel.1 VXLAN device: not the vxlan backend")
            else:
                data = (vxlan.get("linkinfo") or {}).get("info_data") or {}
                if (vxlan.get("linkinfo") or {}).get("info_kind") != "vxlan":
                    problems.append("flannel.1 is not a VXLAN device")
                vxlan_mode = self.mode("vxlan")
                if (data.get("id"), data.get("port")) != (vxlan_mode.vni, vxlan_mode.udp_port):
                    problems.append(f"flannel.1 has VNI {data.get('id')} port {data.get('port')}, "
                                    f"flannel's vxlan backend uses VNI {vxlan_mode.vni}, UDP "
                                    f"{vxlan_mode.udp_port}")
        elif vxlan is not None:
            problems.append("flannel.1 exists: the vxlan backend is (or was) running, not host-gw")
        for peer, (node_ip, pod_cidr) in sorted(peers.items()):
            route = next((r for r in routes if r.get("dst") == pod_cidr), None)
            if route is None:
                problems.append(f"no route to {peer}'s pod subnet {pod_cidr}")
            elif mode == "vxlan" and route.get("dev") != "flannel.1":
                problems.append(f"{pod_cidr} ({peer}) is routed via {route.get('dev')}, "
                                "not flannel.1")
            elif mode == "host-gw" and route.get("gateway") != node_ip:
                problems.append(f"{pod_cidr} ({peer}) goes via {route.get('gateway')}, "
                                f"not {peer}'s node_ip {node_ip}: not host-gw")
        return problems
