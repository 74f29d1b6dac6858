"""Extra filter rules on a host's forwarding path, for the policy-scaling experiments.

The study asks how throughput and latency fall as the number of iptables
rules (or of network-policy chains) a packet walks grows. Rules are loaded
with one ``iptables-restore`` (individual ``-A`` calls are ~100x slower), in a
chain of their own jumped to from FORWARD, and they never match the
benchmark's traffic, so every packet walks all of them. The ipset variant is
the same policy expressed as one rule matching a set of N entries: the
counter-experiment showing that set lookups do not scale with N.
"""

from __future__ import annotations

import ipaddress

from cnilab.lab import sh
from cnilab.lab.overlay import chain_exists, iptables_restore

CHAIN = "CNL-SCALE"
SET_NAME = "cnl-scale"
# Sources that never occur in the lab (TEST-NET-2/3 and benchmarking ranges).
_NEVER = ipaddress.IPv4Network("198.18.0.0/15")


def _never_matching(n: int) -> list[str]:
    hosts = _NEVER.hosts()
    return [str(next(hosts)) for _ in range(n)]


def add_rules(netns: str, count: int, *, shape: str = "rules") -> int:
    """Put ``count`` non-matching rules (``rules``), policy-shaped chains (``chains``)
    or ipset entries (``ipset``) on the FORWARD path; returns rules loaded."""
    if shape not in ("rules", "chains", "ipset"):
        raise ValueError(f"shape must be rules, chains or ipset, got {shape!r}")
    remove_rules(netns)
    lines = ["*filter", f":{CHAIN} - [0:0]", f"-I FORWARD 1 -j {CHAIN}"]
    sources = _never_matching(count)
    if shape == "rules":
        lines += [f"-A {CHAIN} -s {ip}/32 -j DROP" for ip in sources]
    elif shape == "chains":
        # One chain per "policy", each with a conntrack check and a match, like
        # per-policy chains of network-policy engines.
        lines[2:2] = [f":{CHAIN}-{i} - [0:0]" for i in range(count)]
        for i, ip in enumerate(sources):
            lines += [f"-A {CHAIN} -j {CHAIN}-{i}",
                      f"-A {CHAIN}-{i} -m conntrack --ctstate INVALID -j DROP",
                      f"-A {CHAIN}-{i} -s {ip}/32 -j DROP"]
    else:
        members = "\n".join(f"add {SET_NAME} {ip}" for ip in sources)
        sh.run(sh.in_netns(netns, ["ipset", "restore"]),
               input_text=f"create {SET_NAME} hash:ip maxelem {max(65536, count)}\n{members}\n")
        lines.append(f"-A {CHAIN} -m set --match-set {SET_NAME} src -j DROP")
    lines.append("COMMIT")
    iptables_restore(netns, lines)
    return len([line for line in lines if line.startswith("-A ")])


def remove_rules(netns: str) -> None:
    """Remove everything ``add_rules`` added (idempotent)."""
    if chain_exists(netns, CHAIN):
        out = sh.run(sh.in_netns(netns, ["iptables", "-S"])).stdout
        chains = [line.split()[1] for line in out.splitlines()
                  if line.startswith(f"-N {CHAIN}")]
        sh.run(sh.in_netns(netns, ["iptables", "-D", "FORWARD", "-j", CHAIN]), check=False)
        for chain in chains:
            sh.run(sh.in_netns(netns, ["iptables", "-F", chain]), check=False)
        for chain in chains:
            sh.run(sh.in_netns(netns, ["iptables", "-X", chain]), check=False)
    sh.run(sh.in_netns(netns, ["ipset", "destroy", SET_NAME]), check=False)
