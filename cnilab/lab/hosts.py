"""Emulated hosts: one network namespace per node, joined by an underlay.

Two hosts are joined by one veth pair (a back-to-back cable); more hosts hang
off a bridge in a switch namespace. Nothing is created in the root namespace:
veth pairs are made inside one lab namespace with the peer placed directly in
another, so a crash can never leave a stray link on the machine itself.
"""

from __future__ import annotations

import ipaddress

from cnilab.lab import sh
from cnilab.lab.plan import HostPlan, LabPlan

# Sysctls of a kubeadm node that matter for the datapath.
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
}
# br_netfilter knobs are per namespace on recent kernels; where the kernel has
# the module built in, bridged traffic passes iptables as on a kubeadm node.
BRIDGE_NF_SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
}


def existing_netns() -> set[str]:
    """Names of all network namespaces known to iproute2."""
    out = sh.run(["ip", "netns", "list"]).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _set_sysctls(netns: str, values: dict[str, str], *, optional: bool = False) -> None:
    args = [f"{k}={v}" for k, v in values.items()]
    sh.run(sh.in_netns(netns, ["sysctl", "-q", "-w", *args]), check=not optional)


def _prefix_len(plan: LabPlan) -> int:
    return ipaddress.ip_network(plan.underlay_cidr).prefixlen


def _create_host(plan: LabPlan, host: HostPlan) -> None:
    sh.run(["ip", "netns", "add", host.netns])
    sh.ip(host.netns, "link", "set", "lo", "up")
    _set_sysctls(host.netns, NODE_SYSCTLS)
    _set_sysctls(host.netns, BRIDGE_NF_SYSCTLS, optional=True)


def ensure_hosts(plan: LabPlan) -> bool:
    """Create missing host namespaces and the underlay; returns whether anything changed."""
    present = existing_netns()
    changed = False
    if plan.switch_netns and plan.switch_netns not in present:
        sh.run(["ip", "netns", "add", plan.switch_netns])
        sh.ip_batch(plan.switch_netns, ["link set lo up", "link add br0 type bridge",
                                        "link set br0 up"])
        _set_sysctls(plan.switch_netns, {"net.bridge.bridge-nf-call-iptables": "0"},
                     optional=True)
        changed = True
    for host in plan.hosts:
        if host.netns not in present:
            _create_host(plan, host)
            changed = True
    changed |= _ensure_underlay(plan)
    return changed


def _has_link(netns: str, name: str) -> bool:
    return sh.ip(netns, "link", "show", name, check=False).returncode == 0


def _ensure_underlay(plan: LabPlan) -> bool:
    changed = False
    first, *others = plan.hosts
    if plan.switch_netns is None:
        second = others[0]
        if not _has_link(first.netns, first.underlay_if):
            sh.ip(first.netns, "link", "add", first.underlay_if, "type", "veth", "peer", "name",
                  second.underlay_if, "netns", second.netns)
            changed = True
    else:
        for host in plan.hosts:
            if not _has_link(host.netns, host.underlay_if):
                port = f"port-{host.name}"   # in the instance's own switch namespace
                sh.ip(plan.switch_netns, "link", "add", port, "type", "veth", "peer", "name",
                      host.underlay_if, "netns", host.netns)
                sh.ip_batch(plan.switch_netns, [f"link set {port} master br0",
                                                f"link set {port} up"])
                changed = True
    plen = _prefix_len(plan)
    # Like a real node, each host has a default route (via an underlay gateway
    # address that nothing answers: the lab has no outside). Proxy-ARP designs
    # such as Calico's rely on the host having a route to the pods' gateway.
    gateway = next(ipaddress.ip_network(plan.underlay_cidr).hosts())
    for host in plan.hosts:
        addrs = sh.ip(host.netns, "-o", "-4", "addr", "show", "dev", host.underlay_if).stdout
        if f"{host.underlay_ip}/{plen}" not in addrs:
            sh.ip_batch(host.netns, [
                f"addr add {host.underlay_ip}/{plen} dev {host.underlay_if}",
                f"link set {host.underlay_if} mtu 1500 up",
                f"route add default via {gateway} dev {host.underlay_if}",
            ])
            changed = True
    return changed
