"""Shared kernel mechanisms that several plugins' datapaths use.

Not plugin knowledge: a VXLAN device with statically programmed peers (what
flanneld, Felix and, in the lab, Cilium's tunnel do), plain routes to peers,
an iptables-restore helper, and waiting for BGP-learned peer routes. Each
plugin module decides names, ports and addresses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cnilab.errors import CnilabError
from cnilab.lab import sh
from cnilab.lab.plan import LabPlan


@dataclass(frozen=True)
class VxlanPeer:
    subnet: str        # remote pod block
    gateway: str       # remote tunnel address (onlink next hop)
    mac: str           # remote VTEP MAC
    underlay_ip: str   # remote VTEP underlay address


def has_link(netns: str, name: str) -> bool:
    return sh.ip(netns, "link", "show", name, check=False).returncode == 0


def ensure_vxlan(netns: str, *, name: str, vni: int, port: int, local: str, dev: str, mac: str,
                 mtu: int, address: str | None, learning: bool = False) -> bool:
    """Create a VXLAN device (idempotent); returns whether it was created."""
    if has_link(netns, name):
        return False
    learn = "learning" if learning else "nolearning"
    lines = [
        f"link add {name} type vxlan id {vni} local {local} dev {dev} dstport {port} {learn}",
        f"link set {name} address {mac} mtu {mtu}",
    ]
    if address:
        lines.append(f"addr add {address}/32 dev {name}")
    lines.append(f"link set {name} up")
    sh.ip_batch(netns, lines)
    return True


def program_vxlan_peers(netns: str, device: str, peers: list[VxlanPeer]) -> bool:
    """Per peer: onlink route via its tunnel address, permanent neighbour, FDB entry."""
    present = sh.ip(netns, "route", "show", "dev", device).stdout
    lines: list[str] = []
    for peer in peers:
        if peer.subnet in present:
            continue
        sh.run(["bridge", "-n", netns, "fdb", "replace", peer.mac, "dev", device, "dst",
                peer.underlay_ip, "self", "permanent"])
        lines += [
            f"neigh replace {peer.gateway} lladdr {peer.mac} dev {device} nud permanent",
            f"route replace {peer.subnet} via {peer.gateway} dev {device} onlink",
        ]
    sh.ip_batch(netns, lines)
    return bool(lines)


def program_direct_routes(netns: str, dev: str, routes: list[tuple[str, str]]) -> bool:
    """``subnet via underlay-address`` routes (host-gw, native routing); idempotent."""
    present = sh.ip(netns, "route", "show", "dev", dev).stdout
    lines = [f"route replace {subnet} via {via} dev {dev}" for subnet, via in routes
             if subnet not in present]
    sh.ip_batch(netns, lines)
    return bool(lines)


def chain_exists(netns: str, chain: str, table: str = "filter") -> bool:
    return sh.run(sh.in_netns(netns, ["iptables", "-t", table, "-S", chain]),
                  check=False).returncode == 0


def iptables_restore(netns: str, rules: list[str]) -> None:
    """Load rules with one ``iptables-restore --noflush`` (individual -A calls are ~100x slower)."""
    sh.run(sh.in_netns(netns, ["iptables-restore", "--noflush"]),
           input_text="\n".join(rules) + "\n")


def set_sysctls(netns: str, values: dict[str, str]) -> None:
    sh.run(sh.in_netns(netns, ["sysctl", "-q", "-w", *[f"{k}={v}" for k, v in values.items()]]))


def wait_peer_routes(plan: LabPlan, *, proto: str, daemon: str, timeout_s: float,
                     interval_s: float) -> None:
    """Until every host has every peer's pod block as a kernel route of ``proto`` (the
    routes a BGP daemon, or its sync, installed); raises naming the missing ones."""
    deadline = time.monotonic() + timeout_s
    missing: list[str] = []
    while time.monotonic() < deadline:
        missing = []
        for host in plan.hosts:
            routes = sh.ip(host.netns, "route", "show", "proto", proto).stdout
            missing += [f"{host.name}: {p.pod_subnet}" for p in plan.peers(host)
                        if p.pod_subnet not in routes]
        if not missing:
            return
        time.sleep(interval_s)
    raise CnilabError(f"{daemon} did not converge within {timeout_s:g} s; missing routes: "
                      f"{', '.join(missing)}")
