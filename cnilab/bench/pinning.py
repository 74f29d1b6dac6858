"""CPU pinning of benchmark processes.

On small (virtual) machines, where both ends share few CPUs, request/response
latency is dominated by waking an idle vCPU unless client and server sit on
the same CPU (measured here: TCP_RR 54 us unpinned vs 12.6 us pinned), while
stream tests need the two ends on different CPUs to not share one core's
cycles. ``auto`` applies exactly that and every record says where each end ran.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cnilab.bench.suites import Invocation


@dataclass(frozen=True)
class Placement:
    client: int
    server: int


def choose(kind: str, cpus: int) -> Placement | None:
    """Where to run client and server; None on a single CPU (nothing to choose)."""
    if cpus < 2:
        return None
    if kind == "rr":
        return Placement(client=1, server=1)
    return Placement(client=0, server=1)


def apply(inv: Invocation, where: Placement) -> Invocation:
    """The same invocation under ``taskset`` (which execs the tool: the pid stays the tool's)."""
    return replace(inv,
                   server_argv=["taskset", "-c", str(where.server), *inv.server_argv],
                   client_argv=["taskset", "-c", str(where.client), *inv.client_argv])
