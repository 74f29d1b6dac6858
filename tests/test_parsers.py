"""iperf3 parsing on real outputs (tests/data/iperf3: produced by iperf3 3.12 in the netns lab)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnilab.bench.parsers import ParseError
from cnilab.bench.parsers.iperf3 import parse

DATA = Path(__file__).resolve().parent / "data" / "iperf3"


def load(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_tcp_single_stream_uses_receiver_side() -> None:
    text = load("tcp-1stream.json")
    m = parse(text)
    raw = json.loads(text)["end"]
    assert m["protocol"] == "tcp"
    assert m["streams"] == 1
    assert m["throughput_gbps"] == pytest.approx(raw["sum_received"]["bits_per_second"] / 1e9)
    assert m["sent_gbps"] == pytest.approx(raw["sum_sent"]["bits_per_second"] / 1e9)
    assert m["retransmits"] == raw["sum_sent"]["retransmits"]
    assert 0.1 < m["throughput_gbps"] < 400
    assert m["version"] == "iperf 3.12"
    assert m["iperf3_local_cpu_percent"] is not None


def test_tcp_parallel_streams_sums() -> None:
    m = parse(load("tcp-2streams.json"))
    assert m["streams"] == 2
    assert m["throughput_gbps"] > 0


def test_tcp_reverse_flag() -> None:
    assert parse(load("tcp-reverse.json"))["reverse"] is True


def test_udp_loss_and_jitter() -> None:
    m = parse(load("udp-100m.json"))
    assert m["protocol"] == "udp"
    assert m["throughput_gbps"] == pytest.approx(0.1, rel=0.1)
    assert m["jitter_ms"] is not None and m["jitter_ms"] >= 0
    assert m["lost_percent"] is not None


def test_tool_error_is_parse_error() -> None:
    with pytest.raises(ParseError, match="Connection refused"):
        parse(load("error-refused.json"))


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"foo": 1}', '{"start": {}, "end": {}}'])
def test_invalid_output(text: str) -> None:
    with pytest.raises(ParseError):
        parse(text)
