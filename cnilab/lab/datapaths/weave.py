"""Weave Net's node datapath (fast datapath), approximated with Linux devices.

Weave is a layer-2 overlay: every pod of the cluster sits in one flat subnet,
attached to the ``weave`` bridge of its host; the bridge reaches other hosts
through the Open vSwitch kernel datapath with VXLAN on UDP 6784 (fastdp). This
kernel has no Open vSwitch, so the lab enslaves a Linux VXLAN device
(``vxlan-6784``, learning on, one flood entry per peer) to the bridge: the
same encapsulation on the wire, a different forwarding engine on the host.
weave-npc's chains and its ipset of local pods are installed as well.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from cnilab.lab import cni, sh
from cnilab.lab.datapaths.base import Datapath, register
from cnilab.lab.overlay import chain_exists, ensure_vxlan, iptables_restore
from cnilab.lab.plan import HostPlan, PodPlan

BRIDGE = "weave"
VXLAN_DEVICE = "vxlan-6784"
# weave's fast datapath carries the peers' identities in the VNI (no fixed value, the
# catalog's vni is null): the lab's one device uses this one
FASTDP_LAB_VNI = 1
LOCAL_PODS_SET = "weave-local-pods"


@register
class WeaveFastdp(Datapath):
    cni: ClassVar[str] = "weave"
    mode: ClassVar[str] = "fastdp"

    def _range(self, host: HostPlan) -> tuple[str, str, str]:
        """This host's share of the flat network: (first, last, bridge address)."""
        block = ipaddress.ip_network(host.pod_subnet)
        return str(block.network_address + 2), str(block.broadcast_address - 1), \
            str(block.network_address + 1)

    def pod_conflist(self, host: HostPlan) -> dict[str, Any]:
        first, last, bridge_ip = self._range(host)
        return cni.bridge_conflist("weave", BRIDGE, self.pod_mtu(), {
            "type": "host-local",
            # One subnet for the whole cluster (L2 overlay), this host's range of it.
            "ranges": [[{"subnet": self.plan.pod_cidr, "rangeStart": first,
                         "rangeEnd": last, "gateway": bridge_ip}]],
            "dataDir": str(self.plan.state_dir() / "ipam" / host.name),
        }, [{"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}])

    def build_host(self, host: HostPlan) -> bool:
        changed = False
        mtu = self.pod_mtu()
        if sh.ip(host.netns, "link", "show", BRIDGE, check=False).returncode != 0:
            sh.ip_batch(host.netns, [f"link add {BRIDGE} type bridge",
                                     f"link set {BRIDGE} mtu {mtu} up"])
            changed = True
        info = self.plan.mode_info
        assert info.udp_port is not None, "the catalog gives weave fastdp its UDP port"
        if ensure_vxlan(host.netns, name=VXLAN_DEVICE, vni=FASTDP_LAB_VNI,
                        port=info.udp_port, local=host.underlay_ip,
                        dev=host.underlay_if, mac=host.mac("6a:77:00:00"), mtu=mtu,
                        address=None, learning=True):
            sh.ip_batch(host.netns, [f"link set {VXLAN_DEVICE} master {BRIDGE}"])
            changed = True
        return changed

    def connect_peers(self, host: HostPlan) -> bool:
        fdb = sh.run(["bridge", "-n", host.netns, "fdb", "show", "dev", VXLAN_DEVICE]).stdout
        changed = False
        for peer in self.plan.peers(host):
            if f"dst {peer.underlay_ip}" in fdb:
                continue
            sh.run(["bridge", "-n", host.netns, "fdb", "append", "00:00:00:00:00:00", "dev",
                    VXLAN_DEVICE, "dst", peer.underlay_ip, "self", "permanent"])
            changed = True
        return changed

    def add_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        """weave-npc on a new local pod: add it to the local-pods set."""
        sh.run(sh.in_netns(host.netns, ["ipset", "-exist", "add", LOCAL_PODS_SET, address]))

    def remove_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        sh.run(sh.in_netns(host.netns, ["ipset", "-exist", "del", LOCAL_PODS_SET, address]))

    def after_pods(self, host: HostPlan, addresses: dict[str, str]) -> bool:
        if chain_exists(host.netns, "WEAVE-NPC"):
            return False
        members = [f"add {LOCAL_PODS_SET} {addresses[p.name]}" for p in host.pods]
        sh.run(sh.in_netns(host.netns, ["ipset", "restore"]),
               input_text="\n".join([f"create {LOCAL_PODS_SET} hash:ip", *members]) + "\n")
        net = self.plan.pod_cidr
        iptables_restore(host.netns, [
            "*filter",
            ":WEAVE-NPC - [0:0]", ":WEAVE-NPC-DEFAULT - [0:0]", ":WEAVE-NPC-INGRESS - [0:0]",
            ":WEAVE-FORWARD - [0:0]",
            '-I FORWARD 1 -o weave -m comment --comment "NOTE: this must go before '
            "'-j KUBE-FORWARD'\" -j WEAVE-NPC",
            "-I FORWARD 2 -j WEAVE-FORWARD",
            "-A WEAVE-FORWARD -i weave ! -o weave -j ACCEPT",
            "-A WEAVE-FORWARD -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A WEAVE-NPC -m state --state RELATED,ESTABLISHED -j ACCEPT",
            "-A WEAVE-NPC -d 224.0.0.0/4 -j ACCEPT",
            "-A WEAVE-NPC -m state --state NEW -j WEAVE-NPC-DEFAULT",
            "-A WEAVE-NPC -m state --state NEW -j WEAVE-NPC-INGRESS",
            # Traffic to pods on other hosts leaves through the overlay port; their
            # own weave-npc judges it there.
            f"-A WEAVE-NPC -m state --state NEW ! -d {net} -j ACCEPT",
            f"-A WEAVE-NPC-DEFAULT -m set --match-set {LOCAL_PODS_SET} dst "
            '-m comment --comment "DefaultAllow ingress isolation for namespace: default" '
            "-j ACCEPT",
            f"-A WEAVE-NPC-DEFAULT -m set ! --match-set {LOCAL_PODS_SET} dst -j ACCEPT",
            "COMMIT",
            "*nat",
            ":WEAVE - [0:0]",
            "-A POSTROUTING -j WEAVE",
            f"-A WEAVE ! -s {net} -d {net} -j MASQUERADE",
            f"-A WEAVE -s {net} ! -d {net} -j MASQUERADE",
            "COMMIT",
        ])
        return True

