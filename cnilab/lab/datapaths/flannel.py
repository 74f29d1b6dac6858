"""Flannel's node datapath, as flanneld (v0.12 through v0.28) programs it.

Both modes: pods hang off the ``cni0`` bridge (CNI bridge + host-local plugins,
the delegate configuration flannel's own CNI plugin writes), plus flanneld's
FLANNEL-FWD accept chain and FLANNEL-POSTRTG masquerade chain.

VXLAN: a ``flannel.1`` device (VNI 1, UDP 8472, learning off, its address the
``.0`` of the host's subnet); per remote host an onlink route via the remote
``.0``, a permanent neighbour entry to the remote VTEP MAC and an FDB entry to
the remote underlay address. host-gw: per remote host a plain route to its
subnet via its underlay address (needs L2 adjacency, as upstream says).
"""

from __future__ import annotations

from typing import Any, ClassVar

from cnilab.lab import cni
from cnilab.lab.datapaths.base import Datapath, register
from cnilab.lab.overlay import (
    VxlanPeer,
    chain_exists,
    ensure_vxlan,
    iptables_restore,
    program_direct_routes,
    program_vxlan_peers,
)
from cnilab.lab.plan import HostPlan

VXLAN_DEVICE = "flannel.1"
BRIDGE = "cni0"


def vtep_mac(host: HostPlan) -> str:
    """A stable MAC per host (flanneld persists one per node)."""
    return host.mac("0e:fa:00:00")


def vtep_address(host: HostPlan) -> str:
    """flannel.1 carries the network address (``.0``) of the host's subnet as a /32."""
    return host.block_address(0)


class _Flannel(Datapath):
    cni: ClassVar[str] = "flannel"

    def pod_conflist(self, host: HostPlan) -> dict[str, Any]:
        # What flannel's CNI plugin delegates to the bridge plugin (its
        # "delegate" block built from /run/flannel/subnet.env).
        return cni.bridge_conflist("cbr0", BRIDGE, self.pod_mtu(), {
            "type": "host-local",
            "ranges": [[{"subnet": host.pod_subnet}]],
            "routes": [{"dst": self.plan.pod_cidr}],
            "dataDir": str(self.plan.state_dir() / "ipam" / host.name),
        })

    def _ensure_chains(self, host: HostPlan) -> bool:
        if chain_exists(host.netns, "FLANNEL-FWD"):
            return False
        net, sub = self.plan.pod_cidr, host.pod_subnet
        masq = '-m comment --comment "flanneld masq"'
        iptables_restore(host.netns, [
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
        ])
        return True


@register
class FlannelVxlan(_Flannel):
    mode: ClassVar[str] = "vxlan"

    def build_host(self, host: HostPlan) -> bool:
        info = self.plan.mode_info
        created = ensure_vxlan(host.netns, name=VXLAN_DEVICE, vni=info.vxlan()[0],
                               port=info.vxlan()[1], local=host.underlay_ip,
                               dev=host.underlay_if, mac=vtep_mac(host), mtu=info.mtu,
                               address=vtep_address(host))
        return self._ensure_chains(host) or created

    def connect_peers(self, host: HostPlan) -> bool:
        peers = [VxlanPeer(p.pod_subnet, vtep_address(p), vtep_mac(p), p.underlay_ip)
                 for p in self.plan.peers(host)]
        return program_vxlan_peers(host.netns, VXLAN_DEVICE, peers)


@register
class FlannelHostGw(_Flannel):
    mode: ClassVar[str] = "host-gw"

    def build_host(self, host: HostPlan) -> bool:
        return self._ensure_chains(host)

    def connect_peers(self, host: HostPlan) -> bool:
        routes = [(p.pod_subnet, p.underlay_ip) for p in self.plan.peers(host)]
        return program_direct_routes(host.netns, host.underlay_if, routes)
