"""Quick proof that a freshly built lab forwards what it should.

Runs at the end of ``lab up``: pod to pod on one host, pod to pod across
hosts, host to host on the underlay, and the pod MTU (the largest
don't-fragment packet passes, one byte more does not). A lab that fails any of
these is not measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cnilab.lab import sh
from cnilab.lab.core import pod_address
from cnilab.lab.plan import LabPlan

IP_ICMP_OVERHEAD = 28  # 20-byte IPv4 header + 8-byte ICMP header
# How long a ping that must NOT be answered waits. A reply inside the lab comes back in
# well under a millisecond (tens of ms on a loaded machine); waiting ping's usual second
# would make every `lab up` a second longer for nothing.
NO_REPLY_WAIT_S = 0.25


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _ping(netns: str, address: str, size: int | None = None, expect: bool = True) -> Check:
    argv = ["ping", "-c", "1", "-W", "1" if expect else str(NO_REPLY_WAIT_S), "-q"]
    if size is not None:
        argv += ["-M", "do", "-s", str(size)]
    proc = sh.run(sh.in_netns(netns, [*argv, address]), check=False, timeout=10)
    passed = proc.returncode == 0
    what = f"ping {address}" + (f" -M do -s {size}" if size is not None else "")
    detail = f"{what}: {'reply' if passed else 'no reply'}"
    return Check(what, passed == expect, detail)


def verify(plan: LabPlan) -> list[dict[str, Any]]:
    """Run the checks; returns them all (the caller fails on any ``ok: False``)."""
    h1, h2 = plan.hosts[0], plan.hosts[1]
    p11 = h1.pods[0]
    checks: list[Check] = []

    def named(label: str, check: Check) -> Check:
        return Check(f"{label}: {check.name}", check.ok, check.detail)

    if len(h1.pods) > 1:
        checks.append(named("intra-host", _ping(p11.netns, pod_address(plan, h1.pods[1]))))
    remote = pod_address(plan, h2.pods[0])
    checks.append(named("inter-host", _ping(p11.netns, remote)))
    checks.append(named("underlay", _ping(h1.netns, h2.underlay_ip)))
    mtu = plan.mode_info.mtu
    checks.append(named(f"pod MTU {mtu} fits",
                        _ping(p11.netns, remote, size=mtu - IP_ICMP_OVERHEAD)))
    checks.append(named(f"pod MTU {mtu} is the limit",
                        _ping(p11.netns, remote, size=mtu - IP_ICMP_OVERHEAD + 1, expect=False)))
    return [asdict(c) for c in checks]
