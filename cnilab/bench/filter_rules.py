"""Extra filter rules on a host's forwarding path, for the policy-scaling experiments.

The rules and the steps that load them are the same on a lab host and on a cluster node
(reached over SSH): this module builds them, each target runs them where it measures.

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
from dataclasses import dataclass

CHAIN = "CNL-SCALE"
SET_NAME = "cnl-scale"
# Sources that never occur in the lab (TEST-NET-2/3 and benchmarking ranges).
_NEVER = ipaddress.IPv4Network("198.18.0.0/15")


def _never_matching(n: int) -> list[str]:
    hosts = _NEVER.hosts()
    return [str(next(hosts)) for _ in range(n)]


@dataclass(frozen=True)
class ScaleRules:
    """One load of the scaling rules: iptables-restore lines, ipset restore input."""

    iptables: list[str]
    ipset: str | None
    loaded: int


def scale_rules(count: int, shape: str) -> ScaleRules:
    """``count`` non-matching rules (``rules``), policy-shaped chains (``chains``) or
    ipset entries (``ipset``) on the FORWARD path (the same on a lab host or a node)."""
    if shape not in ("rules", "chains", "ipset"):
        raise ValueError(f"shape must be rules, chains or ipset, got {shape!r}")
    lines = ["*filter", f":{CHAIN} - [0:0]", f"-I FORWARD 1 -j {CHAIN}"]
    sources = _never_matching(count)
    ipset = None
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
        ipset = f"create {SET_NAME} hash:ip maxelem {max(65536, count)}\n{members}\n"
        lines.append(f"-A {CHAIN} -m set --match-set {SET_NAME} src -j DROP")
    lines.append("COMMIT")
    return ScaleRules(lines, ipset, len([line for line in lines if line.startswith("-A ")]))


def removal_script() -> str:
    """A POSIX shell script removing what ``scale_rules`` loaded (idempotent), for lab
    hosts and for nodes reached over SSH. The chains are flushed and deleted in one
    ``iptables-restore`` transaction: one iptables call per chain re-reads the whole
    table each time and takes minutes for thousands of chains."""
    return (f"iptables -D FORWARD -j {CHAIN} 2>/dev/null; "
            f"chains=$(iptables -S | awk '$1 == \"-N\" && $2 ~ /^{CHAIN}/ {{print $2}}'); "
            "if [ -n \"$chains\" ]; then { echo '*filter'; "
            "for c in $chains; do echo \":$c - [0:0]\"; done; "
            "for c in $chains; do echo \"-X $c\"; done; echo COMMIT; } "
            "| iptables-restore --noflush || exit 1; fi; "
            f"ipset destroy {SET_NAME} 2>/dev/null; true")


Step = tuple[list[str], str | None]   # argv, and the text fed to its stdin


def rule_steps(count: int, shape: str) -> tuple[int, list[Step]]:
    """(rules loaded, the commands) that make a host's FORWARD path hold ``count`` rules
    of ``shape`` (0: none): the previous load removed first, then ipset and iptables
    restores. The same steps serve a lab host and a cluster node over SSH."""
    steps: list[Step] = [(["sh", "-c", removal_script()], None)]
    if count == 0:
        return 0, steps
    rules = scale_rules(count, shape)
    if rules.ipset is not None:
        steps.append((["ipset", "restore"], rules.ipset))
    steps.append((["iptables-restore", "--noflush"], "\n".join(rules.iptables) + "\n"))
    return rules.loaded, steps
