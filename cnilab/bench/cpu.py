"""Machine CPU cost of a measurement, from /proc/stat, and the study's cycles per packet.

iperf3's ``cpu_utilization_percent`` covers only the iperf3 process (getrusage):
it misses softirq work and encapsulation done outside it, which is exactly the
datapath's cost. So around every client run we sample the machine-wide CPU
time split and turn it into CPU-seconds per gigabit and cycles per packet
(busy time x clock / packets through the client's interface). In the netns
lab both ends share the machine, so the figure covers the whole emulated path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class CpuSample:
    jiffies: dict[str, int]


def sample(path: Path = Path("/proc/stat")) -> CpuSample:
    """The aggregate ``cpu`` line of this machine's /proc/stat."""
    return parse_stat(path.read_text(encoding="ascii"), str(path))


def parse_stat(text: str, origin: str = "/proc/stat") -> CpuSample:
    """The aggregate ``cpu`` line of /proc/stat text (read here, or on a node)."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:1 + len(FIELDS)]]
            return CpuSample(dict(zip(FIELDS, values, strict=False)))
    raise RuntimeError(f"{origin}: no aggregate cpu line")


def delta_seconds(before: CpuSample, after: CpuSample,
                  hz: int | None = None) -> dict[str, float]:
    """CPU-seconds spent per category between two samples (summed over all CPUs)."""
    ticks = hz or os.sysconf("SC_CLK_TCK")
    d = {k: (after.jiffies.get(k, 0) - before.jiffies.get(k, 0)) / ticks for k in FIELDS}
    busy = sum(v for k, v in d.items() if k not in ("idle", "iowait"))
    return {
        "cpu_user_s": d["user"] + d["nice"],
        "cpu_system_s": d["system"],
        "cpu_softirq_s": d["softirq"],
        "cpu_irq_s": d["irq"],
        "cpu_busy_s": busy,
        "cpu_idle_s": d["idle"] + d["iowait"],
    }


def clock_hz(path: Path = Path("/proc/cpuinfo")) -> float | None:
    """Mean current clock from /proc/cpuinfo (None where the kernel does not report it)."""
    try:
        return parse_clock_hz(path.read_text())
    except OSError:
        return None


def parse_clock_hz(cpuinfo: str) -> float | None:
    """Mean current clock from /proc/cpuinfo text (None where it has no ``cpu MHz``)."""
    try:
        mhz = [float(line.split(":", 1)[1]) for line in cpuinfo.splitlines()
               if line.startswith("cpu MHz")]
    except ValueError:
        return None
    return sum(mhz) / len(mhz) * 1e6 if mhz else None


def combined(per_machine: dict[str, dict[str, float]]) -> dict[str, float]:
    """CPU-seconds per category summed over machines (a path's cost on every host it
    crosses: the client's and the server's node on a cluster)."""
    total: dict[str, float] = {}
    for seconds in per_machine.values():
        for key, value in seconds.items():
            total[key] = total.get(key, 0.0) + value
    return total


TCP_IP_HEADERS = 52   # IPv4 20 + TCP 20 + timestamps 12: payload per MTU-sized segment


def cost_metrics(cpu: dict[str, float], metrics: dict[str, Any], packets: int | None,
                 hz: float | None, mtu: int | None = None) -> dict[str, float]:
    """CPU-seconds per gigabit and cycles per packet for one measurement, where defined.

    ``cycles_per_packet`` divides by the packets the interface counted, which on
    veth and other GSO/GRO paths are aggregates of up to 64 KiB; the study's CPP is
    per wire packet, so ``cycles_per_mtu_packet`` divides by the number of MTU-sized
    segments the payload needs (bytes / (MTU - TCP/IP headers)) for stream tests.
    """
    out: dict[str, float] = {}
    gbps, seconds = metrics.get("throughput_gbps"), metrics.get("duration_s")
    if isinstance(gbps, float) and isinstance(seconds, float) and gbps > 0 and seconds > 0:
        out["cpu_s_per_gbit"] = cpu["cpu_busy_s"] / (gbps * seconds)
        if hz and mtu and mtu > TCP_IP_HEADERS:
            segments = gbps * 1e9 * seconds / 8.0 / (mtu - TCP_IP_HEADERS)
            out["cycles_per_mtu_packet"] = cpu["cpu_busy_s"] * hz / segments
    if packets and hz:
        out["cycles_per_packet"] = cpu["cpu_busy_s"] * hz / packets
    return out
