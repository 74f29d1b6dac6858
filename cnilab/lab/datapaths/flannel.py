"""Flannel's node datapath, as flanneld (v0.12 through v0.28) programs it.

VXLAN mode: pods hang off the ``cni0`` bridge (CNI bridge + host-local plugins,
the delegate configuration flannel's own CNI plugin writes), and each host has
a ``flannel.1`` VXLAN device (VNI 1, UDP 8472, learning off, its address the
``.0`` of the host's pod subnet). For every remote host flanneld installs three
entries: an onlink route for the remote subnet via the remote ``.0`` address,
a permanent neighbour entry mapping that address to the remote VTEP MAC, and an
FDB entry sending that MAC to the remote underlay address. It also installs
its FLANNEL-FWD accept chain and FLANNEL-POSTRTG masquerade chain.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from cnilab.lab import sh
from cnilab.lab.datapaths.base import Datapath, register
from cnilab.lab.plan import HostPlan

VXLAN_DEVICE = "flannel.1"
BRIDGE = "cni0"


def vtep_mac(host: HostPlan) -> str:
    """A stable, locally administered MAC per host (flanneld persists one per node)."""
    return f"0e:fa:00:00:00:{host.index:02x}"


def vtep_address(host: HostPlan) -> str:
    """flannel.1 carries the network address (``.0``) of the host's subnet as a /32."""
    return str(ipaddress.ip_network(host.pod_subnet).network_address)


class _FlannelBase(Datapath):
    cni: ClassVar[str] = "flannel"

    def pod_conflist(self, host: HostPlan) -> dict[str, Any]:
        # What flannel's CNI plugin delegates to the bridge plugin (its
        # "delegate" block built from /run/flannel/subnet.env).
        return {
            "cniVersion": "1.0.0",
            "name": "cbr0",
            "plugins": [{
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "isDefaultGateway": True,
                "hairpinMode": True,
                "ipMasq": False,
                "mtu": self.pod_mtu(),
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": host.pod_subnet}]],
                    "routes": [{"dst": self.plan.pod_cidr}],
                    "dataDir": str(self.plan.state_dir() / "ipam" / host.name),
                },
            }],
        }

    def _ensure_chains(self, host: HostPlan) -> bool:
        exists = sh.run(sh.in_netns(host.netns, ["iptables", "-S", "FLANNEL-FWD"]),
                        check=False).returncode == 0
        if exists:
            return False
        net, sub = self.plan.pod_cidr, host.pod_subnet
        masq = '-m comment --comment "flanneld masq"'
        rules = "\n".join([
            "*filter",
            ":FLANNEL-FWD - [0:0]",
            '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
            f'-A FLANNEL-FWD -s {net} -m comment --comment "flanneld forward" -j ACCEPT',
            f'-A FLANNEL-FWD -d {net} -m comment --comment "flanneld forward" -j ACCEPT',
            "COMMIT",
            "*nat",
            ":FLANNEL-POSTRTG - [0:0]",
            f"-A POSTROUTING {masq} -j FLANNEL-POSTRTG",
            f"-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 {masq} -j RETURN",
            f"-A FLANNEL-POSTRTG -s {sub} -d {net} {masq} -j RETURN",
            f"-A FLANNEL-POSTRTG -s {net} -d {sub} {masq} -j RETURN",
            f"-A FLANNEL-POSTRTG ! -s {net} -d {sub} {masq} -j RETURN",
            f"-A FLANNEL-POSTRTG -s {net} ! -d 224.0.0.0/4 {masq} -j MASQUERADE --random-fully",
            f"-A FLANNEL-POSTRTG ! -s {net} -d {net} {masq} -j MASQUERADE --random-fully",
            "COMMIT",
        ]) + "\n"
        sh.run(sh.in_netns(host.netns, ["iptables-restore", "--noflush"]), input_text=rules)
        return True


@register
class FlannelVxlan(_FlannelBase):
    mode: ClassVar[str] = "vxlan"

    def build_host(self, host: HostPlan) -> bool:
        changed = False
        if sh.ip(host.netns, "link", "show", VXLAN_DEVICE, check=False).returncode != 0:
            info = self.plan.mode_info
            sh.ip_batch(host.netns, [
                f"link add {VXLAN_DEVICE} type vxlan id {info.vni} local {host.underlay_ip} "
                f"dev {host.underlay_if} dstport {info.udp_port} nolearning",
                f"link set {VXLAN_DEVICE} address {vtep_mac(host)} mtu {info.mtu}",
                f"addr add {vtep_address(host)}/32 dev {VXLAN_DEVICE}",
                f"link set {VXLAN_DEVICE} up",
            ])
            changed = True
        return self._ensure_chains(host) or changed

    def connect_peers(self, host: HostPlan) -> bool:
        present = sh.ip(host.netns, "route", "show", "dev", VXLAN_DEVICE).stdout
        lines: list[str] = []
        fdb: list[list[str]] = []
        for peer in self.plan.hosts:
            if peer.name == host.name or peer.pod_subnet in present:
                continue
            gw = vtep_address(peer)
            lines += [
                f"neigh replace {gw} lladdr {vtep_mac(peer)} dev {VXLAN_DEVICE} nud permanent",
                f"route replace {peer.pod_subnet} via {gw} dev {VXLAN_DEVICE} onlink",
            ]
            fdb.append(["bridge", "-n", host.netns, "fdb", "replace", vtep_mac(peer), "dev",
                        VXLAN_DEVICE, "dst", peer.underlay_ip, "self", "permanent"])
        for argv in fdb:
            sh.run(argv)
        sh.ip_batch(host.netns, lines)
        return bool(lines)
