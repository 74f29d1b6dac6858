"""Cilium's node datapath in its eBPF essentials.

Pods attach on ``lxc<hash>`` veths (routed, no bridge; addresses from the
real host-local IPAM plugin). A tc eBPF program on each lxc's ingress hands
same-host pod traffic directly to the destination pod (bpf_redirect_peer),
bypassing the host stack and netfilter. The host has the
``cilium_host``/``cilium_net`` pair, ``cilium_host`` carrying the router
address that pods use as their gateway.

Inter-host: ``vxlan`` mode sends remote blocks through ``cilium_vxlan`` (UDP
8472), here a Linux VXLAN device with static peer entries; ``native`` mode
routes them via each peer's underlay address (autoDirectNodeRoutes).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from cnilab.lab import ebpf, sh
from cnilab.lab.datapaths.base import Datapath, register
from cnilab.lab.overlay import (
    VxlanPeer,
    chain_exists,
    ensure_vxlan,
    has_link,
    iptables_restore,
    program_direct_routes,
    program_vxlan_peers,
)
from cnilab.lab.plan import HostPlan, PodPlan
from cnilab.lab.routed import attach_routed_pod, detach_routed_pod, veth_name

VXLAN_DEVICE = "cilium_vxlan"
PROGRAM = "lxc_redirect"


def router_ip(host: HostPlan) -> str:
    """cilium_host's address: the first address of the host's pod CIDR."""
    return host.block_address(1)


def vtep_mac(host: HostPlan) -> str:
    return host.mac("6e:c1:00:00")


def _link(netns: str, dev: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(sh.ip(netns, "-j", "link", "show", dev).stdout)
    return data[0]


class _Cilium(Datapath):
    cni: ClassVar[str] = "cilium"

    def build_host(self, host: HostPlan) -> bool:
        changed = False
        if not has_link(host.netns, "cilium_host"):
            sh.ip_batch(host.netns, [
                "link add cilium_host type veth peer name cilium_net",
                f"addr add {router_ip(host)}/32 dev cilium_host",
                "link set cilium_net up", "link set cilium_host up",
            ])
            changed = True
        if not chain_exists(host.netns, "CILIUM_FORWARD"):
            # cilium-agent's iptables companions: accept what enters or leaves lxc*.
            iptables_restore(host.netns, [
                "*filter", ":CILIUM_FORWARD - [0:0]",
                '-A FORWARD -m comment --comment "cilium-feeder: CILIUM_FORWARD" '
                "-j CILIUM_FORWARD",
                '-A CILIUM_FORWARD -o lxc+ -m comment --comment "cilium: any->cluster" '
                "-j ACCEPT",
                '-A CILIUM_FORWARD -i lxc+ -m comment --comment "cilium: cluster->any" '
                "-j ACCEPT",
                "COMMIT"])
            changed = True
        return changed

    def attach_pod(self, host: HostPlan, pod: PodPlan) -> dict[str, Any]:
        return attach_routed_pod(self.plan, host, pod, network="cilium",
                                 host_ifname=veth_name("lxc", pod), gateway=router_ip(host),
                                 mtu=self.pod_mtu())

    def detach_pod(self, host: HostPlan, pod: PodPlan) -> None:
        detach_routed_pod(self.plan, host, pod, network="cilium",
                          host_ifname=veth_name("lxc", pod))

    def _endpoint_entry(self, host: HostPlan, pod: PodPlan, address: str) -> ebpf.EndpointEntry:
        link = _link(host.netns, veth_name("lxc", pod))
        pod_link = _link(pod.netns, pod.ifname)
        return ebpf.EndpointEntry(address, int(link["ifindex"]), pod_link["address"],
                                  link["address"])

    def after_pods(self, host: HostPlan, addresses: dict[str, str]) -> bool:
        devices = [veth_name("lxc", p) for p in host.pods]
        attached = {p["dev"] for p in ebpf.attached_programs(host.netns)}
        if all(d in attached for d in devices):
            return False
        entries = [self._endpoint_entry(host, pod, addresses[pod.name]) for pod in host.pods]
        obj = ebpf.compile_program(PROGRAM, self.plan.state_dir() / "bpf" / host.name,
                                   ebpf.endpoints_header(entries))
        for dev in devices:
            ebpf.attach_ingress(host.netns, dev, obj)
        return True

    def add_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        """cilium-agent on a new endpoint: generate and compile its program (with the
        host's endpoint table including the new pod) and attach it to the pod's lxc
        device. Compiling at endpoint creation is what makes Cilium's pod start-up
        the slowest in the study."""
        entries = [self._endpoint_entry(host, p, core_address)
                   for p, core_address in self._host_addresses(host)]
        entries.append(self._endpoint_entry(host, pod, address))
        obj = ebpf.compile_program(PROGRAM, self.plan.state_dir() / "bpf" / host.name / pod.name,
                                   ebpf.endpoints_header(entries))
        ebpf.attach_ingress(host.netns, veth_name("lxc", pod), obj)

    def _host_addresses(self, host: HostPlan) -> list[tuple[PodPlan, str]]:
        out = []
        for p in host.pods:
            addr = sh.run(["ip", "-n", p.netns, "-j", "-4", "addr", "show", p.ifname]).stdout
            info = json.loads(addr)[0]["addr_info"][0]["local"]
            out.append((p, str(info)))
        return out

    def notes(self) -> list[str]:
        return ["cilium: the eBPF program is cnilab's own minimal redirect "
                "(cnilab/lab/bpf/lxc_redirect.c), not Cilium's bpf_lxc; no policy, "
                "no connection tracking in eBPF."]


@register
class CiliumVxlan(_Cilium):
    mode: ClassVar[str] = "vxlan"

    def build_host(self, host: HostPlan) -> bool:
        changed = super().build_host(host)
        info = self.plan.mode_info
        created = ensure_vxlan(host.netns, name=VXLAN_DEVICE, vni=info.vxlan()[0],
                               port=info.vxlan()[1], local=host.underlay_ip,
                               dev=host.underlay_if, mac=vtep_mac(host), mtu=info.mtu,
                               address=None)
        return changed or created

    def connect_peers(self, host: HostPlan) -> bool:
        peers = [VxlanPeer(p.pod_subnet, router_ip(p), vtep_mac(p), p.underlay_ip)
                 for p in self.plan.peers(host)]
        return program_vxlan_peers(host.netns, VXLAN_DEVICE, peers)


@register
class CiliumNative(_Cilium):
    mode: ClassVar[str] = "native"

    def connect_peers(self, host: HostPlan) -> bool:
        routes = [(p.pod_subnet, p.underlay_ip) for p in self.plan.peers(host)]
        return program_direct_routes(host.netns, host.underlay_if, routes)
