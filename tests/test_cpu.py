"""CPU accounting and pinning: known values, no root needed."""

from __future__ import annotations

import pytest

from cnilab.bench import cpu, pinning
from cnilab.bench.suites import Invocation, get_suite


def test_delta_seconds_splits_busy_and_idle() -> None:
    before = cpu.CpuSample(dict.fromkeys(cpu.FIELDS, 0))
    after = cpu.CpuSample({"user": 150, "nice": 50, "system": 100, "idle": 400, "iowait": 100,
                           "irq": 10, "softirq": 90, "steal": 0})
    d = cpu.delta_seconds(before, after, hz=100)
    assert d["cpu_user_s"] == pytest.approx(2.0)
    assert d["cpu_system_s"] == pytest.approx(1.0)
    assert d["cpu_softirq_s"] == pytest.approx(0.9)
    assert d["cpu_busy_s"] == pytest.approx(4.0)   # user+nice+system+irq+softirq
    assert d["cpu_idle_s"] == pytest.approx(5.0)


def test_cost_metrics_known_values() -> None:
    used = {"cpu_busy_s": 2.0}
    out = cpu.cost_metrics(used, {"throughput_gbps": 10.0, "duration_s": 4.0}, 1_000_000, 2e9)
    assert out["cpu_s_per_gbit"] == pytest.approx(2.0 / 40.0)
    assert out["cycles_per_packet"] == pytest.approx(2.0 * 2e9 / 1_000_000)
    assert cpu.cost_metrics(used, {"transactions_per_s": 5.0}, None, 2e9) == {}


def test_real_proc_stat() -> None:
    a = cpu.sample()
    b = cpu.sample()
    assert set(a.jiffies) == set(cpu.FIELDS)
    assert cpu.delta_seconds(a, b)["cpu_busy_s"] >= 0


def test_pinning_rr_same_cpu_stream_different() -> None:
    assert pinning.choose("rr", 2) == pinning.Placement(1, 1)
    assert pinning.choose("stream", 2) == pinning.Placement(0, 1)
    assert pinning.choose("stream", 1) is None
    assert get_suite("netperf-tcp-rr").kind == "rr" and get_suite("iperf3-tcp").kind == "stream"
    inv = pinning.apply(Invocation(["netserver"], ["netperf"], 12865, 5.0),
                        pinning.Placement(1, 1))
    assert inv.client_argv == ["taskset", "-c", "1", "netperf"]
    assert inv.server_argv == ["taskset", "-c", "1", "netserver"]


def test_cycles_per_mtu_sized_packet() -> None:
    used = {"cpu_busy_s": 2.0}
    # 8 Gbit/s for 1 s = 1e9 bytes; MTU 1450 -> 1398-byte segments -> 715307.6 segments;
    # 2 s x 2e9 Hz = 4e9 cycles -> 5592.0 cycles per segment
    out = cpu.cost_metrics(used, {"throughput_gbps": 8.0, "duration_s": 1.0}, 1000, 2e9,
                           mtu=1450)
    assert out["cycles_per_mtu_packet"] == pytest.approx(4e9 / (1e9 / 1398))
    assert out["cycles_per_packet"] == pytest.approx(4e6)   # per GSO aggregate: 1000 counted
    assert "cycles_per_mtu_packet" not in cpu.cost_metrics(
        used, {"throughput_gbps": 8.0, "duration_s": 1.0}, 1000, 2e9)
