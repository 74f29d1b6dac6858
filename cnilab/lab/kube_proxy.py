"""kube-proxy's iptables mode on each emulated node, with one benchmark Service.

Every node of a kubeadm cluster runs kube-proxy; in iptables mode it installs
KUBE-FORWARD (accept established and marked traffic), the masquerade mark
chains, and per Service a KUBE-SVC chain that jumps to a KUBE-SEP chain doing
the DNAT. The lab installs the same shape for one Service, ``bench``, whose
ClusterIP forwards the benchmark ports to the inter-host server pod, so the
"service" placement walks the path a ClusterIP packet walks.
"""

from __future__ import annotations

import ipaddress

from cnilab.lab.overlay import chain_exists, iptables_restore
from cnilab.lab.plan import HostPlan, LabPlan

MASQ_MARK = "0x4000/0x4000"
# (protocol, port): iperf3, netserver control, netperf's fixed data port
SERVICE_PORTS = (("tcp", 5201), ("udp", 5201), ("tcp", 12865), ("tcp", 12866),
                 ("udp", 12866))


def service_ip(plan: LabPlan) -> str:
    """The benchmark Service's ClusterIP (a fixed address in the service CIDR)."""
    return str(ipaddress.ip_network(plan.service_cidr).network_address + 100)


def service_backend(plan: LabPlan) -> str:
    """The pod behind the Service: the inter-host server (first pod of the second host)."""
    return plan.hosts[1].pods[0].name


def ensure_node_rules(plan: LabPlan, host: HostPlan, addresses: dict[str, str]) -> bool:
    if chain_exists(host.netns, "KUBE-SERVICES", "nat"):
        return False
    vip = service_ip(plan)
    backend = addresses[service_backend(plan)]
    nat = [
        "*nat",
        ":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]",
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" '
        "-j KUBE-POSTROUTING",
        f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}",
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK} -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    for proto, port in SERVICE_PORTS:
        svc = f"KUBE-SVC-BENCH-{proto.upper()}-{port}"
        sep = f"KUBE-SEP-BENCH-{proto.upper()}-{port}"
        nat[1:1] = [f":{svc} - [0:0]", f":{sep} - [0:0]"]
        nat += [
            f'-A KUBE-SERVICES -d {vip}/32 -p {proto} -m comment --comment "default/bench:'
            f'{proto}-{port} cluster IP" -m {proto} --dport {port} -j {svc}',
            f"-A {svc} ! -s {plan.pod_cidr} -d {vip}/32 -p {proto} -m {proto} --dport {port} "
            "-j KUBE-MARK-MASQ",
            f"-A {svc} -j {sep}",
            f"-A {sep} -s {backend}/32 -j KUBE-MARK-MASQ",
            f"-A {sep} -p {proto} -m {proto} -j DNAT --to-destination {backend}:{port}",
        ]
    nat.append("COMMIT")
    filt = [
        "*filter",
        ":KUBE-FORWARD - [0:0]",
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        f"-A KUBE-FORWARD -m mark --mark {MASQ_MARK} -j ACCEPT",
        "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "COMMIT",
    ]
    iptables_restore(host.netns, nat + filt)
    return True
