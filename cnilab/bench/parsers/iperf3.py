"""iperf3 ``-J`` output to metrics.

Receiver-side throughput (``end.sum_received``) is the figure: the sender can
count bytes still in its socket buffer. ``cpu_utilization_percent`` is the
iperf3 process only (getrusage), so it is kept under a name that says so and
is never used as the datapath's CPU cost.
"""

from __future__ import annotations

import json
from typing import Any

from cnilab.bench.parsers import ParseError


def _load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not iperf3 JSON output: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or ("start" not in data and "error" not in data):
        raise ParseError("not iperf3 JSON output: no 'start' or 'error' object")
    return data


def parse(text: str) -> dict[str, Any]:
    """Return metrics for a client-side iperf3 JSON document; ParseError if it failed."""
    data = _load(text)
    if data.get("error"):
        raise ParseError(f"iperf3 reported an error: {data['error']}")
    end = data.get("end")
    if not isinstance(end, dict) or not end:
        raise ParseError("iperf3 JSON output has no 'end' results (test did not finish)")
    start = data.get("start", {})
    test = start.get("test_start", {})
    protocol = str(test.get("protocol", "TCP"))
    cpu = end.get("cpu_utilization_percent", {})
    metrics: dict[str, Any] = {
        "protocol": protocol.lower(),
        "streams": int(test.get("num_streams", 1)),
        "reverse": bool(test.get("reverse", 0)),
        "iperf3_local_cpu_percent": cpu.get("host_total"),
        "iperf3_remote_cpu_percent": cpu.get("remote_total"),
    }
    if protocol == "TCP":
        received = end.get("sum_received")
        sent = end.get("sum_sent")
        if not received or not sent:
            raise ParseError("iperf3 TCP output lacks end.sum_received / end.sum_sent")
        metrics.update({
            "throughput_gbps": received["bits_per_second"] / 1e9,
            "sent_gbps": sent["bits_per_second"] / 1e9,
            "bytes_received": int(received["bytes"]),
            "duration_s": float(received["seconds"]),
            "retransmits": sent.get("retransmits"),
        })
        streams = end.get("streams", [])
        if streams:
            rtts = [s["sender"].get("mean_rtt") for s in streams if "sender" in s]
            rtts = [r for r in rtts if r is not None]
            if rtts:
                metrics["mean_rtt_us"] = sum(rtts) / len(rtts)
    else:
        total = end.get("sum_received") or end.get("sum")
        if not total:
            raise ParseError("iperf3 UDP output lacks end.sum")
        metrics.update({
            "throughput_gbps": total["bits_per_second"] / 1e9,
            "duration_s": float(total["seconds"]),
            "jitter_ms": total.get("jitter_ms"),
            "lost_packets": total.get("lost_packets"),
            "packets": total.get("packets"),
            "lost_percent": total.get("lost_percent"),
        })
    metrics["version"] = start.get("version")
    return metrics
