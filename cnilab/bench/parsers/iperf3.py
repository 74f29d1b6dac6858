"""iperf3 ``-J`` output to metrics.

Receiver-side throughput (``end.sum_received``) is the figure: the sender can
count bytes still in its socket buffer. ``cpu_utilization_percent`` is the
iperf3 process only (getrusage), so it is kept under a name that says so and
is never used as the datapath's CPU cost.
"""

from __future__ import annotations

import json
from typing import Any

from cnilab.bench.parsers import ParseError, number


def _not_json(word: str) -> Any:
    raise ParseError(f"not iperf3 JSON output: {word} is not a JSON number")


def _load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not iperf3 JSON output: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise ParseError("not iperf3 JSON output: nested too deep") from None
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
    start = _object(data.get("start", {}), "start")
    test = _object(start.get("test_start", {}), "start.test_start")
    protocol = str(test.get("protocol", "TCP"))
    cpu = _object(end.get("cpu_utilization_percent", {}), "end.cpu_utilization_percent")
    metrics: dict[str, Any] = {
        "protocol": protocol.lower(),
        "streams": int(number(test.get("num_streams", 1), "start.test_start.num_streams")),
        "reverse": bool(test.get("reverse", 0)),
        "iperf3_local_cpu_percent": _optional(cpu, "host_total", "end.cpu_utilization_percent"),
        "iperf3_remote_cpu_percent": _optional(cpu, "remote_total",
                                               "end.cpu_utilization_percent"),
    }
    if protocol == "TCP":
        received = end.get("sum_received")
        sent = end.get("sum_sent")
        if not received or not sent:
            raise ParseError("iperf3 TCP output lacks end.sum_received / end.sum_sent")
        received = _object(received, "end.sum_received")
        sent = _object(sent, "end.sum_sent")
        metrics.update({
            "throughput_gbps": _required(received, "bits_per_second", "end.sum_received") / 1e9,
            "sent_gbps": _required(sent, "bits_per_second", "end.sum_sent") / 1e9,
            "bytes_received": int(_required(received, "bytes", "end.sum_received")),
            "duration_s": _required(received, "seconds", "end.sum_received"),
            "retransmits": _optional(sent, "retransmits", "end.sum_sent"),
        })
        streams = end.get("streams", [])
        if isinstance(streams, list) and streams:
            rtts = [_optional(_object(s.get("sender"), f"end.streams[{i}].sender"), "mean_rtt",
                              f"end.streams[{i}].sender")
                    for i, s in enumerate(streams) if isinstance(s, dict) and "sender" in s]
            present = [r for r in rtts if r is not None]
            if present:
                metrics["mean_rtt_us"] = sum(present) / len(present)
    else:
        total = end.get("sum_received") or end.get("sum")
        if not total:
            raise ParseError("iperf3 UDP output lacks end.sum")
        total = _object(total, "end.sum")
        metrics.update({
            "throughput_gbps": _required(total, "bits_per_second", "end.sum") / 1e9,
            "duration_s": _required(total, "seconds", "end.sum"),
            "jitter_ms": _optional(total, "jitter_ms", "end.sum"),
            "lost_packets": _optional(total, "lost_packets", "end.sum"),
            "packets": _optional(total, "packets", "end.sum"),
            "lost_percent": _optional(total, "lost_percent", "end.sum"),
        })
    metrics["version"] = start.get("version")
    return metrics


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"iperf3 JSON: {where} is not an object")
    return value


def _required(obj: dict[str, Any], key: str, where: str) -> float:
    if key not in obj:
        raise ParseError(f"iperf3 JSON: {where}.{key} is missing")
    return number(obj[key], f"iperf3 {where}.{key}")


def _optional(obj: dict[str, Any], key: str, where: str) -> float | None:
    return None if obj.get(key) is None else number(obj[key], f"iperf3 {where}.{key}")
