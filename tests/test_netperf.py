"""netperf suites and parser: command lines, real outputs (tests/data/netperf, netperf 2.7.0
run in the netns lab), error output, and ``cnilab parse``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnilab.bench.executor import Endpoint
from cnilab.bench.parsers import ParseError
from cnilab.bench.parsers.netperf import parse
from cnilab.bench.suites import NETPERF_DATA_PORT, NETSERVER_PORT, get_suite

DATA = Path(__file__).resolve().parent / "data" / "netperf"
CLIENT = Endpoint("h1-p1", "h1", "10.244.1.2", "pod", "cnl-h1-p1")
SERVER = Endpoint("svc", "h2", "10.96.0.100", "service", "cnl-h2-p1", bind_address="10.244.2.2")


def load(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_rr_command_has_j_fixed_ports_and_sizes() -> None:
    inv = get_suite("netperf-tcp-rr").invocation(CLIENT, SERVER, {"request_size": 64,
                                                                  "response_size": 1024})
    argv = inv.client_argv
    assert argv[:3] == ["netperf", "-H", "10.96.0.100"]  # the client talks to the ClusterIP
    assert "-j" in argv and argv[argv.index("-t") + 1] == "TCP_RR"
    assert argv[argv.index("-p") + 1] == str(NETSERVER_PORT)
    assert argv[argv.index("-P") + 1] == f"0,{NETPERF_DATA_PORT}"
    assert argv[argv.index("-r") + 1] == "64,1024"
    assert argv.index("-j") < argv.index("--") < argv.index("-r")  # -j is a global option
    assert argv[argv.index("-c"):argv.index("-c") + 2] == ["-c", "-C"]
    assert inv.server_argv[inv.server_argv.index("-L") + 1] == "10.244.2.2"  # the pod binds
    assert inv.port == NETSERVER_PORT


def test_confidence_options() -> None:
    inv = get_suite("netperf-tcp-stream").invocation(CLIENT, SERVER, {"confidence": 5,
                                                                      "duration_s": 2})
    argv = inv.client_argv
    assert argv[argv.index("-I") + 1] == "95,5" and argv[argv.index("-i") + 1] == "10,3"
    assert inv.timeout_s >= 20  # ten iterations of two seconds fit


@pytest.mark.parametrize(("name", "kind"), [("tcp_rr.txt", "rr"), ("udp_rr.txt", "rr"),
                                            ("tcp_crr.txt", "rr"),
                                            ("tcp_stream.txt", "stream")])
def test_real_outputs(name: str, kind: str) -> None:
    m = parse(load(name))
    assert m["local_cpu_percent"] >= 0 and m["remote_cpu_percent"] >= 0
    assert m["duration_s"] > 0
    if kind == "rr":
        assert m["transactions_per_s"] > 100
        # -j was given: every percentile is there, ordered
        assert m["latency_min_us"] <= m["latency_p50_us"] <= m["latency_p90_us"] \
            <= m["latency_p99_us"] <= m["latency_max_us"]
        assert m["rt_latency_us"] == pytest.approx(1e6 / m["transactions_per_s"], rel=0.05)
        assert "throughput_gbps" not in m
    else:
        assert 0.1 < m["throughput_gbps"] < 400
        assert "send_call_latency_p99_us" in m and "latency_p99_us" not in m
        assert m["send_size_bytes"] == 16384


def test_confidence_output() -> None:
    m = parse(load("tcp_rr_confidence.txt"))
    assert m["confidence_level_percent"] == 95
    assert 3 <= m["confidence_iterations"] <= 10


def test_unreachable_netserver() -> None:
    with pytest.raises(ParseError, match="could not reach netserver"):
        parse(load("error_no_netserver.txt"))


@pytest.mark.parametrize("text", ["", "hello\n", "THROUGHPUT=abc\nTHROUGHPUT_UNITS=Trans/s\n",
                                  "THROUGHPUT=5\nTHROUGHPUT_UNITS=furlongs\n"])
def test_invalid(text: str) -> None:
    with pytest.raises(ParseError):
        parse(text)


def test_cli_parse_prints_record_and_rejects_garbage(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok = cli("parse", "netperf", str(DATA / "tcp_rr.txt"))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["metrics"]["transactions_per_s"] > 100
    ok = cli("parse", "iperf3", str(DATA.parent / "iperf3" / "tcp-1stream.json"))
    assert ok.returncode == 0 and json.loads(ok.stdout)["metrics"]["throughput_gbps"] > 0
    bad = tmp_path / "bad.txt"
    bad.write_text("not an output\n")
    proc = cli("parse", "netperf", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "not netperf omni" in lines[0]


def test_confidence_fields_absent_when_engine_off() -> None:
    assert "confidence_iterations" not in parse(load("tcp_rr.txt"))
