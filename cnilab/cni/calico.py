"""Calico on real clusters: manifests/calico.yaml (manifest install, Kubernetes API
datastore) patched for BGP, IP-in-IP or VXLAN.

Where its knobs live (calico.yaml of the current release): env of the ``calico-node``
container —
``CALICO_IPV4POOL_CIDR`` (commented out upstream; its default pool 192.168.0.0/16
collides with 192.168 node networks), ``CALICO_IPV4POOL_IPIP`` / ``CALICO_IPV4POOL_VXLAN``
(encapsulation of the default pool, which calico-node creates once, at first start) —
and the ConfigMap ``calico-config``: ``calico_backend`` (bird for BGP and IP-in-IP,
vxlan without BGP) and ``veth_mtu`` ("0": Calico derives the MTU). The node address is
chosen by ``IP_AUTODETECTION_METHOD``; ``cidr=`` with each node_ip as a /32 picks the
interface carrying node_ip on every node. Without BIRD (vxlan), the BIRD liveness and
readiness checks are removed, as upstream's calico-vxlan.yaml does.

Network policy: Felix programs policy chains whatever the mode; "policy on" in the
study means NetworkPolicy objects exist, which the benchmark applies, not the install.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cnilab.cni.base import (
    DEFAULT_OPTIONS,
    ClusterNetwork,
    Document,
    ModeOptions,
    Plugin,
    containers,
    find,
    set_env,
)
from cnilab.errors import InputError

# mode -> (calico_backend, IPv4 pool IPIP, IPv4 pool VXLAN)
MODES = {"bgp": ("bird", "Never", "Never"),
         "ipip": ("bird", "Always", "Never"),
         "vxlan": ("vxlan", "Never", "Always")}
BIRD_CHECKS = ("-bird-live", "-bird-ready")
# encapsulation overhead per mode, which the pod MTU leaves room for (IPv4)
OVERHEAD = {"bgp": 0, "ipip": 20, "vxlan": 50}
# the first release whose calico-node derives the MTU itself (veth_mtu "0"); before it,
# veth_mtu is the MTU used as it is
AUTO_MTU_FROM = (3, 17)


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = (int(p) for p in version.lstrip("v").split(".")[:2])
    return major, minor


def _veth_mtu(mode: str, network: ClusterNetwork, version: str) -> str:
    """The forced MTU; else "0" (Calico derives it) from 3.17 on, and before that what
    it would derive: the node's MTU less the mode's encapsulation."""
    if network.mtu is not None:
        return str(network.mtu)
    if _major_minor(version) >= AUTO_MTU_FROM:
        return "0"
    if network.node_mtu is None:
        raise InputError(f"calico {version} cannot derive the pod MTU (veth_mtu is used as "
                         "given before 3.17): give the MTU, or deploy on nodes whose MTU "
                         "cnilab reads")
    return str(network.node_mtu - OVERHEAD[mode])


# the device each mode carries remote pod traffic over (None: the node NIC, BGP-learned)
TUNNEL_DEVICE = {"bgp": None, "ipip": "tunl0", "vxlan": "vxlan.calico"}


class Calico(Plugin):
    name = "calico"

    def patch(self, documents: list[Document], mode: str, network: ClusterNetwork,
              version: str, options: ModeOptions = DEFAULT_OPTIONS) -> list[Document]:
        self.require(mode, options)
        where = f"calico.yaml {version}"
        backend, ipip, vxlan = MODES[mode]
        config = find(documents, "ConfigMap", "calico-config", where)
        config["data"]["calico_backend"] = backend
        config["data"]["veth_mtu"] = _veth_mtu(mode, network, version)
        daemonset = find(documents, "DaemonSet", "calico-node", where)
        nodes = [c for c in containers(daemonset, "calico-node")
                 if any(e.get("name") == "CALICO_IPV4POOL_IPIP" for e in c.get("env") or [])]
        if len(nodes) != 1:
            raise InputError(f"{where}: expected one calico-node container with the pool env, "
                             f"found {len(nodes)}: the upstream file changed shape")
        node = nodes[0]
        set_env(node, "CALICO_IPV4POOL_CIDR", network.pod_cidr)
        set_env(node, "CALICO_IPV4POOL_IPIP", ipip)
        set_env(node, "CALICO_IPV4POOL_VXLAN", vxlan)
        set_env(node, "CALICO_IPV6POOL_VXLAN", "Never")
        set_env(node, "IP_AUTODETECTION_METHOD",
                "cidr=" + ",".join(f"{ip}/32" for ip in network.node_ips))
        if backend != "bird":
            for probe in ("livenessProbe", "readinessProbe"):
                command = node.get(probe, {}).get("exec", {}).get("command")
                if command:
                    command[:] = [c for c in command if c not in BIRD_CHECKS]
        return documents

    def mode_problems(self, mode: str, links: list[dict[str, Any]], routes: list[dict[str, Any]],
                      peers: dict[str, tuple[str, str]], pod_cidr: str) -> list[str]:
        """Whether this node's datapath is ``mode``'s, from ``ip -j -d link`` and
        ``ip -j route``: the tunnel device the mode needs (and not the others'), and every
        route to a remote pod block through that device (BGP: via a peer's node_ip, learned
        by BIRD). Calico allocates /26 blocks as pods appear, so a node may have no remote
        routes yet; those it has must all take the mode's path."""
        problems = []
        node_ips = {node_ip for node_ip, _ in peers.values()}
        names = {link.get("ifname"): link for link in links}
        expected = TUNNEL_DEVICE[mode]
        vxlan = names.get("vxlan.calico")
        wanted = self.mode("vxlan")
        if mode == "vxlan":
            info = ((vxlan or {}).get("linkinfo") or {}).get("info_data") or {}
            if vxlan is None:
                problems.append("no vxlan.calico device: not Calico's VXLAN mode")
            elif (info.get("id"), info.get("port")) != (wanted.vni, wanted.udp_port):
                problems.append(f"vxlan.calico has VNI {info.get('id')} port {info.get('port')}, "
                                f"Calico uses VNI {wanted.vni}, UDP {wanted.udp_port}")
        elif vxlan is not None:
            problems.append(f"vxlan.calico exists: the VXLAN mode is (or was) running, not {mode}")
        if mode == "ipip" and "tunl0" not in names:
            problems.append("no tunl0 device: not Calico's IP-in-IP mode")
        pods = ipaddress.IPv4Network(pod_cidr)
        for route in routes:
            dst = str(route.get("dst", ""))
            dev = str(route.get("dev", ""))
            if "/" not in dst or route.get("type") == "blackhole" or dev.startswith("cali"):
                continue
            try:
                if not ipaddress.IPv4Network(dst, strict=False).subnet_of(pods):
                    continue
            except (ValueError, TypeError):
                continue
            if expected is not None and dev != expected:
                problems.append(f"{dst} goes via {dev}, not {expected}: not Calico {mode}")
            elif expected is None:
                if dev in ("tunl0", "vxlan.calico"):
                    problems.append(f"{dst} goes via {dev}: encapsulated, not plain BGP")
                elif route.get("gateway") not in node_ips or route.get("protocol") != "bird":
                    problems.append(f"{dst} via {route.get('gateway')} (proto "
                                    f"{route.get('protocol')}) is not a BGP route to a peer node")
        return problems
