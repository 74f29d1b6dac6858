"""Shared kernel mechanisms that several plugins' datapaths use.

Not plugin knowledge: a VXLAN device with statically programmed peers (what
flanneld, Felix and, in the lab, Cilium's tunnel do), plain routes to peers,
and an iptables-restore helper. Each plugin module decides names, ports and
addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnilab.lab import sh


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
