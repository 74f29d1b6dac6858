"""Routed pod attachment: one point-to-point veth per pod, no bridge.

The shape shared by Calico (cali*) and Cilium (lxc*): the pod gets a /32
address and a default route via a gateway address that the host answers for
(proxy ARP, or a local address), the host gets a /32 route per pod on the
pod's veth. The address comes from the real host-local IPAM plugin, called
the way those plugins call their IPAM.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cnilab.lab import cni, sh
from cnilab.lab.overlay import set_sysctls
from cnilab.lab.plan import HostPlan, LabPlan, PodPlan

CNI_VERSION = "1.0.0"


def veth_name(prefix: str, pod: PodPlan) -> str:
    """``<prefix><11 hex>`` from the container id, as Calico names cali* devices (15 chars max)."""
    return prefix + hashlib.sha1(pod.container_id.encode()).hexdigest()[: 15 - len(prefix)]


def ipam_conf(plan: LabPlan, host: HostPlan, network: str) -> dict[str, Any]:
    return {
        "cniVersion": CNI_VERSION,
        "name": network,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": host.pod_subnet}]],
            "dataDir": str(plan.state_dir() / "ipam" / host.name),
        },
    }


def attach_routed_pod(
    plan: LabPlan,
    host: HostPlan,
    pod: PodPlan,
    *,
    network: str,
    host_ifname: str,
    gateway: str,
    mtu: int,
    host_mac: str | None = None,
) -> dict[str, Any]:
    """Create the pod's veth pair and routes; returns a CNI-shaped result."""
    cni.add_loopback(host_netns=host.netns, pod_netns=pod.netns,
                     container_id=pod.container_id, cni_version=CNI_VERSION)
    ipam = cni.invoke("ADD", ipam_conf(plan, host, network), host_netns=host.netns,
                      pod_netns=pod.netns, container_id=pod.container_id, ifname=pod.ifname,
                      plugin_name="host-local")
    address = str(ipam["ips"][0]["address"]).split("/")[0]
    sh.ip(host.netns, "link", "add", host_ifname, "type", "veth", "peer", "name", pod.ifname,
          "netns", pod.netns)
    host_lines = [f"link set {host_ifname} mtu {mtu} up",
                  f"route add {address}/32 dev {host_ifname} scope link"]
    if host_mac:
        host_lines.insert(0, f"link set {host_ifname} address {host_mac}")
    sh.ip_batch(host.netns, host_lines)
    set_sysctls(host.netns, {f"net.ipv4.conf.{host_ifname}.proxy_arp": "1",
                             f"net.ipv4.neigh.{host_ifname}.proxy_delay": "0",
                             f"net.ipv4.conf.{host_ifname}.forwarding": "1"})
    sh.ip_batch(pod.netns, [
        f"addr add {address}/32 dev {pod.ifname}",
        f"link set {pod.ifname} mtu {mtu} up",
        f"route add {gateway} dev {pod.ifname} scope link",
        f"route add default via {gateway} dev {pod.ifname}",
    ])
    return {
        "cniVersion": CNI_VERSION,
        "interfaces": [{"name": host_ifname}, {"name": pod.ifname, "sandbox": pod.netns}],
        "ips": [{"address": f"{address}/32", "gateway": gateway, "interface": 1}],
    }


def detach_routed_pod(plan: LabPlan, host: HostPlan, pod: PodPlan, *, network: str,
                      host_ifname: str) -> None:
    """What the plugin's CNI DEL does: delete the veth pair (its /32 route goes with it)
    and release the address through IPAM DEL."""
    sh.ip(host.netns, "link", "del", host_ifname, check=False)
    cni.invoke("DEL", ipam_conf(plan, host, network), host_netns=host.netns,
               pod_netns=pod.netns, container_id=pod.container_id, ifname=pod.ifname,
               plugin_name="host-local")
    cni.del_loopback(host_netns=host.netns, pod_netns=pod.netns,
                     container_id=pod.container_id, cni_version=CNI_VERSION)
