"""Calico's node datapath (calico-node: Felix + BIRD), as it looks on a node.

Pods: one ``cali<hash>`` veth each, host side without an address, MAC
ee:ee:ee:ee:ee:ee and proxy ARP, a /32 route per pod; inside the pod a default
route via 169.254.1.1. Addresses come from a /26 block per host.

BGP mode: BIRD 2 in every host namespace, an iBGP full mesh (AS 64512) that
announces each host's block (a blackhole route, as Calico's BIRD config does)
and installs the peers' blocks in the kernel (``proto bird``). VXLAN mode:
``vxlan.calico`` (VNI 4096, UDP 4789) with per-peer entries as Felix programs
them, no BGP. IP-in-IP needs the ipip module and is refused without it.

Policy on: the filter chains Felix renders for workloads with one
default-allow policy: cali-FORWARD dispatching to per-interface cali-fw-* /
cali-tw-* chains that accept established traffic, mark, walk the policy chain
and accept only if the policy marked the packet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from cnilab.lab import sh
from cnilab.lab.datapaths.base import Datapath, register
from cnilab.lab.overlay import (
    VxlanPeer,
    chain_exists,
    ensure_vxlan,
    iptables_restore,
    program_vxlan_peers,
    wait_peer_routes,
)
from cnilab.lab.plan import HostPlan, PodPlan
from cnilab.lab.routed import attach_routed_pod, detach_routed_pod, veth_name

GATEWAY = "169.254.1.1"
HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee"
AS_NUMBER = 64512
VXLAN_DEVICE = "vxlan.calico"
CONVERGENCE_TIMEOUT_S = 20.0


def vtep_mac(host: HostPlan) -> str:
    return host.mac("66:ca:00:00")


def tunnel_address(host: HostPlan) -> str:
    """Calico gives the VXLAN device an address from the host's own block."""
    return host.block_address(0)


class _Calico(Datapath):
    cni: ClassVar[str] = "calico"

    def attach_pod(self, host: HostPlan, pod: PodPlan) -> dict[str, Any]:
        return attach_routed_pod(self.plan, host, pod, network="k8s-pod-network",
                                 host_ifname=veth_name("cali", pod), gateway=GATEWAY,
                                 mtu=self.pod_mtu(), host_mac=HOST_VETH_MAC)

    def detach_pod(self, host: HostPlan, pod: PodPlan) -> None:
        detach_routed_pod(self.plan, host, pod, network="k8s-pod-network",
                          host_ifname=veth_name("cali", pod))

    def _base_chains(self, host: HostPlan) -> bool:
        if chain_exists(host.netns, "cali-FORWARD"):
            return False
        iptables_restore(host.netns, [
            "*filter",
            ":cali-FORWARD - [0:0]",
            '-I FORWARD 1 -m comment --comment "cali:forward" -j cali-FORWARD',
            "-A cali-FORWARD -j MARK --set-xmark 0x0/0xe0000",
            "COMMIT",
            "*nat",
            ":cali-nat-outgoing - [0:0]",
            "-A POSTROUTING -j cali-nat-outgoing",
            f"-A cali-nat-outgoing -s {self.plan.pod_cidr} ! -d {self.plan.pod_cidr} "
            "-j MASQUERADE --random-fully",
            "COMMIT",
        ])
        return True

    def after_pods(self, host: HostPlan, addresses: dict[str, str]) -> bool:
        if chain_exists(host.netns, "cali-from-wl-dispatch") or chain_exists(
                host.netns, "cali-wl-accept"):
            return False
        workloads = [veth_name("cali", p) for p in host.pods]
        if not self.plan.policy:
            # No policy: the workload interfaces are simply accepted.
            iptables_restore(host.netns, [
                "*filter", ":cali-wl-accept - [0:0]",
                "-A cali-FORWARD -i cali+ -j cali-wl-accept",
                "-A cali-FORWARD -o cali+ -j cali-wl-accept",
                "-A cali-wl-accept -j ACCEPT", "COMMIT"])
            return True
        rules = ["*filter", ":cali-from-wl-dispatch - [0:0]", ":cali-to-wl-dispatch - [0:0]",
                 ":cali-pi-default-allow - [0:0]", ":cali-po-default-allow - [0:0]"]
        for w in workloads:
            rules += _workload_chains(w)
        rules += [
            "-A cali-FORWARD -i cali+ -j cali-from-wl-dispatch",
            "-A cali-FORWARD -o cali+ -j cali-to-wl-dispatch",
            "-A cali-FORWARD -i cali+ -j ACCEPT",
            "-A cali-FORWARD -o cali+ -j ACCEPT",
            "-A cali-pi-default-allow -j MARK --set-xmark 0x10000/0x10000",
            "-A cali-pi-default-allow -m mark --mark 0x10000/0x10000 -j RETURN",
            "-A cali-po-default-allow -j MARK --set-xmark 0x10000/0x10000",
            "-A cali-po-default-allow -m mark --mark 0x10000/0x10000 -j RETURN",
        ]
        for w in workloads:
            rules += [f"-A cali-from-wl-dispatch -i {w} -g cali-fw-{w}",
                      f"-A cali-to-wl-dispatch -o {w} -g cali-tw-{w}",
                      *_workload_chain_rules(w)]
        rules += ['-A cali-from-wl-dispatch -m comment --comment "Unknown interface" -j DROP',
                  '-A cali-to-wl-dispatch -m comment --comment "Unknown interface" -j DROP',
                  "COMMIT"]
        iptables_restore(host.netns, rules)
        return True

    def add_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        """Felix on a new workload: its two policy chains and dispatch entries (with
        policy off the cali+ wildcard already accepts it: nothing to program)."""
        if not self.plan.policy:
            return
        w = veth_name("cali", pod)
        # Inserted at the top: the dispatch chains end with "Unknown interface" DROP.
        iptables_restore(host.netns, [
            "*filter", *_workload_chains(w),
            f"-I cali-from-wl-dispatch 1 -i {w} -g cali-fw-{w}",
            f"-I cali-to-wl-dispatch 1 -o {w} -g cali-tw-{w}",
            *_workload_chain_rules(w), "COMMIT"])

    def remove_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        if not self.plan.policy:
            return
        w = veth_name("cali", pod)
        iptables_restore(host.netns, [
            "*filter",
            f"-D cali-from-wl-dispatch -i {w} -g cali-fw-{w}",
            f"-D cali-to-wl-dispatch -o {w} -g cali-tw-{w}",
            f"-F cali-fw-{w}", f"-F cali-tw-{w}", f"-X cali-fw-{w}", f"-X cali-tw-{w}",
            "COMMIT"])


def _workload_chains(workload: str) -> list[str]:
    return [f":cali-fw-{workload} - [0:0]", f":cali-tw-{workload} - [0:0]"]


def _workload_chain_rules(workload: str) -> list[str]:
    """Felix's per-workload chains: conntrack fast path, then the (allow-all) policy."""
    rules: list[str] = []
    for chain, policy in ((f"cali-fw-{workload}", "cali-po-default-allow"),
                          (f"cali-tw-{workload}", "cali-pi-default-allow")):
        rules += [
            f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A {chain} -m conntrack --ctstate INVALID -j DROP",
            f"-A {chain} -j MARK --set-xmark 0x0/0x10000",
            f"-A {chain} -j {policy}",
            f"-A {chain} -m mark --mark 0x10000/0x10000 -j RETURN",
            f'-A {chain} -m comment --comment "Drop if no policies passed packet" -j DROP',
        ]
    return rules


def bird_config(peers: list[HostPlan], host: HostPlan) -> str:
    """BIRD 2 configuration: Calico's shape (block as blackhole, iBGP mesh), fast timers."""
    lines = [
        f"router id {host.underlay_ip};",
        "protocol device { scan time 2; }",
        "protocol direct { ipv4; interface -\"cali*\", \"*\"; }",
        "protocol kernel {",
        "  ipv4 { import none; export filter {",
        "    if proto = \"blocks\" then accept;",
        "    if source = RTS_BGP then accept;",
        "    reject; }; };",
        "  scan time 2;",
        "}",
        "protocol static blocks {",
        "  ipv4;",
        f"  route {host.pod_subnet} blackhole;",
        "}",
        "template bgp mesh {",
        f"  local {host.underlay_ip} as {AS_NUMBER};",
        "  ipv4 { import all; export where proto = \"blocks\"; next hop self; };",
        # Calico's defaults are slower; the lab shortens them so a mesh converges in ~1 s.
        "  connect delay time 1; connect retry time 1; error wait time 1, 5;",
        "  hold time 3; keepalive time 1; startup hold time 1;",
        "}",
    ]
    for peer in peers:
        name = f"mesh_{peer.underlay_ip.replace('.', '_')}"
        lines.append(f"protocol bgp {name} from mesh {{ neighbor {peer.underlay_ip} "
                     f"as {AS_NUMBER}; }}")
    return "\n".join(lines) + "\n"


@register
class CalicoBgp(_Calico):
    mode: ClassVar[str] = "bgp"

    def _bird_dir(self) -> Path:
        return self.plan.state_dir() / "bird"

    def _socket(self, host: HostPlan) -> Path:
        return self._bird_dir() / f"{host.name}.ctl"

    def build_host(self, host: HostPlan) -> bool:
        return self._base_chains(host)

    def connect_peers(self, host: HostPlan) -> bool:
        pid_dir = self.plan.state_dir() / "pids"
        pidfile = pid_dir / f"bird-{host.name}.pid"
        if pidfile.is_file():
            changed = False
        else:
            self._bird_dir().mkdir(parents=True, exist_ok=True)
            pid_dir.mkdir(parents=True, exist_ok=True)
            conf = self._bird_dir() / f"{host.name}.conf"
            conf.write_text(bird_config(self.plan.peers(host), host), encoding="utf-8")
            sh.run(sh.in_netns(host.netns, ["bird", "-c", str(conf), "-s",
                                            str(self._socket(host)), "-P", str(pidfile)]))
            changed = True
        if host is self.plan.hosts[-1]:
            self.wait_converged()
        return changed

    def host_details(self, host: HostPlan) -> dict[str, Any]:
        out = sh.run(["birdc", "-s", str(self._socket(host)), "show", "protocols"],
                     check=False).stdout
        sessions = []
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[1] == "BGP":
                sessions.append({"name": fields[0], "state": fields[3],
                                 "info": " ".join(fields[5:])})
        return {"bgp_daemon": "bird", "bgp_sessions": sessions}

    def wait_converged(self) -> None:
        """Until every host has every peer's block as a BIRD-installed kernel route."""
        wait_peer_routes(self.plan, proto="bird", daemon="BGP",
                         timeout_s=CONVERGENCE_TIMEOUT_S, interval_s=0.05)

    def notes(self) -> list[str]:
        return ["BIRD timers shortened (connect delay 1 s, hold 3 s, keepalive 1 s) so the "
                "mesh converges in about a second; Calico's are longer."]


@register
class CalicoVxlan(_Calico):
    mode: ClassVar[str] = "vxlan"

    def build_host(self, host: HostPlan) -> bool:
        info = self.plan.mode_info
        created = ensure_vxlan(host.netns, name=VXLAN_DEVICE, vni=info.vxlan()[0],
                               port=info.vxlan()[1], local=host.underlay_ip,
                               dev=host.underlay_if, mac=vtep_mac(host), mtu=info.mtu,
                               address=tunnel_address(host))
        blackhole = sh.ip(host.netns, "route", "show", "type", "blackhole").stdout
        if host.pod_subnet not in blackhole:
            sh.ip(host.netns, "route", "add", "blackhole", host.pod_subnet)
            created = True
        return self._base_chains(host) or created

    def connect_peers(self, host: HostPlan) -> bool:
        peers = [VxlanPeer(p.pod_subnet, tunnel_address(p), vtep_mac(p), p.underlay_ip)
                 for p in self.plan.peers(host)]
        return program_vxlan_peers(host.netns, VXLAN_DEVICE, peers)
