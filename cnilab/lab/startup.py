"""Pod start-up in the lab: what a node does when K pods start on it at once.

The extended paper times pod start-up per plugin and breaks it into steps
(network namespace, the CNI plugin's ADD with IP allocation, the agent's
endpoint programming) and watches how it grows with the number of pods started
together. In the lab each step is the real kernel work of that mode: a new
namespace, the CNI reference plugins' ADD (bridge/host-local or the routed veth
with host-local IPAM), then the mode's endpoint programming (e.g. Cilium's
per-endpoint eBPF compile and attach, Calico's per-workload chains, Weave's
ipset entry). Time to first packet is measured with one ICMP echo to a pod
already on the host, retried for at most ``FIRST_PACKET_TIMEOUT_S``.

The start-up pods are removed again (CNI DEL, endpoint state, namespace), so
the lab is as it was before for the measurements that follow.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cnilab.bench.suites import check_startup_pods
from cnilab.errors import CnilabError, InputError
from cnilab.lab import core, hosts, sh
from cnilab.lab.datapaths import datapath_for
from cnilab.lab.plan import HostPlan, LabPlan, PodPlan
from cnilab.network import PODS_PER_HOST_RANGE

FIRST_PACKET_TIMEOUT_S = 3.0


@dataclass
class PodTiming:
    pod: str
    address: str = ""
    netns_ms: float = 0.0
    cni_add_ms: float = 0.0
    programming_ms: float = 0.0
    ready_ms: float = 0.0        # namespace + CNI ADD + programming
    first_packet_ms: float | None = None
    error: str | None = None
    ready_at: float = 0.0        # monotonic clock, for the all-ready time of a batch


def startup_pods(plan: LabPlan, host: HostPlan, count: int, attempt: int) -> list[PodPlan]:
    """Names for ``count`` extra pods on ``host``; unique per attempt so nothing collides
    with a pod a failed attempt may have left."""
    return [PodPlan(name=f"{host.name}-s{attempt}x{i}",
                    netns=f"{host.netns}-s{attempt}x{i}", host=host.name,
                    container_id=f"{plan.prefix}s{host.index:02d}{attempt:05d}{i:03d}")
            for i in range(1, count + 1)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _first_packet(pod: PodPlan, target_ip: str) -> float | None:
    """Seconds until one echo reply from ``target_ip`` (None if none came in time)."""
    started = time.monotonic()
    deadline = started + FIRST_PACKET_TIMEOUT_S
    while time.monotonic() < deadline:
        proc = subprocess.run(["ip", "netns", "exec", pod.netns, "ping", "-n", "-q", "-c", "1",
                               "-W", "1", target_ip], capture_output=True, check=False)
        if proc.returncode == 0:
            return time.monotonic() - started
    return None


def _start_one(plan: LabPlan, host: HostPlan, pod: PodPlan, reference_ip: str) -> PodTiming:
    datapath = datapath_for(plan)
    timing = PodTiming(pod.name)
    try:
        t0 = time.monotonic()
        sh.run(["ip", "netns", "add", pod.netns])
        t1 = time.monotonic()
        result = datapath.attach_pod(host, pod)
        t2 = time.monotonic()
        timing.address = str(result["ips"][0]["address"]).split("/")[0]
        datapath.add_endpoint(host, pod, timing.address)
        t3 = time.monotonic()
        timing.netns_ms, timing.cni_add_ms = _ms(t1 - t0), _ms(t2 - t1)
        timing.programming_ms, timing.ready_ms = _ms(t3 - t2), _ms(t3 - t0)
        timing.ready_at = t3
        first = _first_packet(pod, reference_ip)
        timing.first_packet_ms = None if first is None else _ms(first)
        if first is None:
            timing.error = f"no reply from {reference_ip} within {FIRST_PACKET_TIMEOUT_S:g} s"
    except CnilabError as exc:
        timing.error = str(exc)
    return timing


def _remove(plan: LabPlan, host: HostPlan, pod: PodPlan, address: str,
            existing: set[str]) -> None:
    """CNI DEL, endpoint state, namespace: best effort, every step attempted."""
    datapath = datapath_for(plan)
    if pod.netns not in existing:
        return
    if address:
        with contextlib.suppress(CnilabError):
            datapath.remove_endpoint(host, pod, address)
    with contextlib.suppress(CnilabError):
        datapath.detach_pod(host, pod)
    sh.run(["ip", "netns", "del", pod.netns], check=False)


def measure_startup(plan: LabPlan, count: int, attempt: int) -> dict[str, Any]:
    """Start ``count`` pods together on the first host, time every step, remove them.

    Returns the raw outcome: per-pod step times (``ready_offset_ms`` from the common
    start), the wall time until the last first reply, and errors.
    """
    check_startup_pods(count)
    host = plan.hosts[0]
    if len(host.pods) + count > PODS_PER_HOST_RANGE[1]:
        raise InputError(f"pod start-up: {len(host.pods)} pods per host + {count} started "
                         f"exceeds the lab's {PODS_PER_HOST_RANGE[1]} per host")
    reference_ip = core.pod_address(plan, host.pods[0])
    pods = startup_pods(plan, host, count, attempt)
    timings: list[PodTiming] = []
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            timings = list(pool.map(lambda p: _start_one(plan, host, p, reference_ip), pods))
        total = time.monotonic() - started
    finally:
        addresses = {t.pod: t.address for t in timings}
        existing = hosts.existing_netns()   # listed once for the whole batch
        for pod in pods:
            _remove(plan, host, pod, addresses.get(pod.name, ""), existing)
    details = [{**{k: v for k, v in t.__dict__.items() if k != "ready_at"},
                "ready_offset_ms": _ms(t.ready_at - started) if t.ready_at else None}
               for t in timings]
    # The raw record of the measurement; metrics come from it through
    # cnilab.bench.parsers.startup, like any tool output.
    return {"requested": count, "all_reachable_ms": _ms(total), "pods": details,
            "errors": [f"{t.pod}: {t.error}" for t in timings if t.error]}
