"""Benchmark suites: the command lines of each test and how their output is read.

A suite owns everything tool-specific: its parameters (declared, typed and
validated through ``ParamSpec``), the server and client argv built from them,
and the parser for the client's output. Every flag it uses ends up in the
record, so a number can always be traced to the exact invocation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from cnilab.bench import background
from cnilab.bench.executor import Endpoint
from cnilab.bench.params import ParamSpec
from cnilab.bench.parsers import iperf3 as iperf3_parser
from cnilab.bench.parsers import netperf as netperf_parser
from cnilab.errors import InputError

MAX_STARTUP_PODS = 32   # pods started together in one pod-startup measurement


@dataclass(frozen=True)
class Invocation:
    """The two command lines of one measurement."""

    server_argv: list[str]
    client_argv: list[str]
    port: int
    timeout_s: float


class Suite(ABC):
    name: ClassVar[str]
    tool: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[dict[str, ParamSpec]]
    primary_metric: ClassVar[str]
    # stream | rr: a client/server traffic test (decides CPU pinning);
    # startup: pods started on a node, no traffic placement;
    # snapshot: a reading of the nodes' state (the CNI agents' memory), no traffic
    kind: ClassVar[str] = "stream"
    # False when smaller is better (latency, start-up time)
    higher_is_better: ClassVar[bool] = True
    # what summary.csv and the report's tables give for each cell, primary metric first
    # (every metric a study's claims compare is among them)
    secondary_metrics: ClassVar[tuple[str, ...]] = ()

    @property
    def summary_metrics(self) -> tuple[str, ...]:
        return (self.primary_metric, *self.secondary_metrics)

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Parameters with defaults filled in (the spec has already been validated)."""
        return {name: given.get(name, spec.default) for name, spec in self.params.items()}

    # seconds the tools hold a measurement past its test (0: none measured)
    linger_s: ClassVar[float] = 0.0

    def nominal_seconds(self, params: dict[str, Any]) -> float:
        """How long the measurement itself runs (background load must cover it)."""
        p = self.resolve(params)
        return float(p.get("duration_s", 0)) + float(p.get("omit_s", 0))

    def wall_seconds(self, params: dict[str, Any]) -> float:
        """How long the tools take for one measurement: the test and what they hold past
        it (start-up and the engine's own work aside)."""
        return self.nominal_seconds(params) + self.linger_s


class TrafficSuite(Suite):
    """A client/server test: command lines at two endpoints and a parser for the output."""

    @abstractmethod
    def invocation(self, client: Endpoint, server: Endpoint, params: dict[str, Any]) -> Invocation:
        ...

    @abstractmethod
    def parse(self, client_output: str) -> dict[str, Any]:
        ...


class Iperf3Tcp(TrafficSuite):
    name = "iperf3-tcp"
    tool = "iperf3"
    description = "iperf3 TCP bulk transfer, receiver-side throughput (-J)"
    primary_metric = "throughput_gbps"
    secondary_metrics = ("cycles_per_mtu_packet", "cpu_s_per_gbit", "retransmits")
    params: ClassVar[dict[str, ParamSpec]] = {
        "duration_s": ParamSpec("duration_s", int, 10, "test length in seconds (-t)", 1, 3600),
        "omit_s": ParamSpec("omit_s", int, 1, "seconds omitted at the start, TCP ramp-up (-O)",
                            0, 60),
        "streams": ParamSpec("streams", int, 1, "parallel TCP streams (-P)", 1, 128),
        "port": ParamSpec("port", int, 5201, "server port (-p)", 1024, 65535),
    }

    def invocation(self, client: Endpoint, server: Endpoint, params: dict[str, Any]) -> Invocation:
        p = self.resolve(params)
        port = int(p["port"])
        server_argv = ["iperf3", "--server", "--one-off", "--json", "--bind",
                       server.listen_address,
                       "--port", str(port)]
        client_argv = ["iperf3", "--client", server.address, "--port", str(port), "--json",
                       "--time", str(p["duration_s"]), "--omit", str(p["omit_s"]),
                       "--parallel", str(p["streams"])]
        # Budget: the test, the omitted ramp-up, and connection set-up/tear-down.
        timeout = float(p["duration_s"]) + float(p["omit_s"]) + 15.0
        return Invocation(server_argv, client_argv, port, timeout)

    def parse(self, client_output: str) -> dict[str, Any]:
        return iperf3_parser.parse(client_output)


class Iperf3Udp(TrafficSuite):
    name = "iperf3-udp"
    tool = "iperf3"
    description = "iperf3 UDP at a target rate: received rate, loss and jitter (-u -b, -J)"
    primary_metric = "throughput_gbps"
    params: ClassVar[dict[str, ParamSpec]] = {
        "duration_s": ParamSpec("duration_s", int, 10, "test length in seconds (-t)", 1, 3600),
        "bitrate_mbps": ParamSpec("bitrate_mbps", int, 1000, "target rate in Mbit/s (-b)", 1,
                                  100000),
        "length_bytes": ParamSpec("length_bytes", int, 1400, "datagram payload (-l); keep "
                                  "below the pod MTU minus 28", 16, 65000),
        "port": ParamSpec("port", int, 5201, "server port (-p)", 1024, 65535),
    }

    def invocation(self, client: Endpoint, server: Endpoint, params: dict[str, Any]) -> Invocation:
        p = self.resolve(params)
        port = int(p["port"])
        server_argv = ["iperf3", "--server", "--one-off", "--json", "--bind",
                       server.listen_address, "--port", str(port)]
        client_argv = ["iperf3", "--client", server.address, "--port", str(port), "--json",
                       "--udp", "--bitrate", f"{p['bitrate_mbps']}M", "--length",
                       str(p["length_bytes"]), "--time", str(p["duration_s"])]
        return Invocation(server_argv, client_argv, port, float(p["duration_s"]) + 15.0)

    def parse(self, client_output: str) -> dict[str, Any]:
        return iperf3_parser.parse(client_output)


NETSERVER_PORT = 12865
NETPERF_DATA_PORT = 12866
# Omni output selectors every netperf suite asks for (-k); latency ones need -j.
NETPERF_SELECTORS = (
    "THROUGHPUT,THROUGHPUT_UNITS,TRANSACTION_RATE,RT_LATENCY,MIN_LATENCY,MEAN_LATENCY,"
    "P50_LATENCY,P90_LATENCY,P99_LATENCY,MAX_LATENCY,STDDEV_LATENCY,LOCAL_CPU_UTIL,"
    "REMOTE_CPU_UTIL,PROTOCOL,ELAPSED_TIME,REQUEST_SIZE,RESPONSE_SIZE,LOCAL_SEND_SIZE,"
    "LOCAL_TRANSPORT_RETRANS,CONFIDENCE_LEVEL,CONFIDENCE_INTERVAL,CONFIDENCE_ITERATION,"
    "THROUGHPUT_CONFID"
)


class _Netperf(TrafficSuite):
    """netperf omni tests against netserver, on fixed control and data ports so that a
    Service (DNAT) can carry them."""

    tool = "netperf"
    test_type: ClassVar[str]
    common: ClassVar[dict[str, ParamSpec]] = {
        "duration_s": ParamSpec("duration_s", int, 10, "test length in seconds (-l)", 1, 3600),
        "cpu": ParamSpec("cpu", bool, True, "measure local and remote CPU (-c -C; "
                         "system-wide figures)"),
        "confidence": ParamSpec("confidence", int, 0, "netperf's own confidence engine: "
                                "interval width in percent at 95 % (-I 95,W -i 10,3); "
                                "0 = off", 0, 50),
    }
    specific: ClassVar[dict[str, ParamSpec]] = {}

    @property
    def params(self) -> dict[str, ParamSpec]:  # type: ignore[override]
        return {**self.common, **self.specific}

    def test_options(self, p: dict[str, Any]) -> list[str]:
        return []

    def invocation(self, client: Endpoint, server: Endpoint, params: dict[str, Any]) -> Invocation:
        p = self.resolve(params)
        server_argv = ["netserver", "-D", "-4", "-L", server.listen_address, "-p",
                       str(NETSERVER_PORT)]
        client_argv = ["netperf", "-H", server.address, "-p", str(NETSERVER_PORT), "-4",
                       "-l", str(p["duration_s"]), "-t", self.test_type, "-j"]
        if p["cpu"]:
            client_argv += ["-c", "-C"]
        iterations = 1
        if p["confidence"]:
            iterations = 10
            client_argv += ["-I", f"95,{p['confidence']}", "-i", "10,3"]
        client_argv += ["--", *self.test_options(p), "-P", f"0,{NETPERF_DATA_PORT}",
                        "-k", NETPERF_SELECTORS]
        timeout = float(p["duration_s"]) * iterations + 20.0
        return Invocation(server_argv, client_argv, NETSERVER_PORT, timeout)

    def parse(self, client_output: str) -> dict[str, Any]:
        return netperf_parser.parse(client_output)


class NetperfTcpStream(_Netperf):
    name = "netperf-tcp-stream"
    test_type = "TCP_STREAM"
    description = "netperf TCP_STREAM: bulk throughput for a send size (-m)"
    primary_metric = "throughput_gbps"
    specific: ClassVar[dict[str, ParamSpec]] = {
        "message_size": ParamSpec("message_size", int, 16384, "send size in bytes (-m)", 1,
                                  1048576),
    }

    def test_options(self, p: dict[str, Any]) -> list[str]:
        return ["-m", str(p["message_size"])]


class _NetperfRR(_Netperf):
    primary_metric = "transactions_per_s"
    secondary_metrics = ("latency_mean_us", "latency_p99_us")
    kind = "rr"
    specific: ClassVar[dict[str, ParamSpec]] = {
        "request_size": ParamSpec("request_size", int, 1, "request bytes (-r)", 1, 1048576),
        "response_size": ParamSpec("response_size", int, 1, "response bytes (-r)", 1,
                                   1048576),
    }

    def test_options(self, p: dict[str, Any]) -> list[str]:
        return ["-r", f"{p['request_size']},{p['response_size']}"]


class NetperfTcpRR(_NetperfRR):
    name = "netperf-tcp-rr"
    test_type = "TCP_RR"
    description = "netperf TCP_RR: request/response transactions and latency percentiles"


class NetperfUdpRR(_NetperfRR):
    name = "netperf-udp-rr"
    test_type = "UDP_RR"
    description = "netperf UDP_RR: request/response transactions and latency percentiles"


class NetperfTcpCRR(_NetperfRR):
    name = "netperf-tcp-crr"
    test_type = "TCP_CRR"
    description = "netperf TCP_CRR: connect, request, response, close per transaction"
    # netserver cannot tell when a connection-per-transaction client has stopped: it waits
    # out the test length plus PAD_TIME (netperf 2.7.0 netlib.h: 4 s) before it sends its
    # results (tests/test_suites_e2e.py times real runs against this)
    linger_s = 4.0


class PodStartup(Suite):
    """K pods started together on one node: time to ready and to the first packet.

    Not a traffic test: the target starts the pods itself (lab: namespace, CNI ADD,
    the mode's endpoint programming; Kubernetes: pod creation to container start and
    first reply).
    """

    name = "pod-startup"
    tool = "cni"
    kind = "startup"
    higher_is_better = False
    description = "pod start-up: K pods started together on one node, per-step times"
    primary_metric = "all_ready_ms"
    params: ClassVar[dict[str, ParamSpec]] = {
        "pods": ParamSpec("pods", int, 1, "pods started together", 1, MAX_STARTUP_PODS),
    }


class AgentMemory(Suite):
    """The CNI plugin's agent pods' memory, from the kubelet (cnilab/bench/parsers/kubelet.py).

    Not a traffic test: read once per round from every node's Summary API, after that
    round's traffic. Only a cluster runs the agents; the netns lab does not.
    """

    name = "agent-memory"
    tool = "kubelet"
    kind = "snapshot"
    higher_is_better = False
    description = "memory (working set) of the CNI plugin's agent pods, per node"
    primary_metric = "agent_memory_mib"
    params: ClassVar[dict[str, ParamSpec]] = {}


SUITES: dict[str, Suite] = {s.name: s for s in (
    Iperf3Tcp(), Iperf3Udp(), NetperfTcpStream(), NetperfTcpRR(), NetperfUdpRR(),
    NetperfTcpCRR(), PodStartup(), AgentMemory())}


def measurement_seconds(suite_name: str, params: dict[str, Any],
                        condition: dict[str, Any]) -> float:
    """How long one measurement of a cell takes, the engine's own work aside: what its
    tools take, or with background load the flows' whole run (they start first and are
    waited out, cnilab/bench/background.py). 0 for what runs no test of fixed length."""
    suite = SUITES.get(suite_name)
    if suite is None:
        return float(params.get("duration_s", 0) or 0)
    seconds = suite.wall_seconds(params)
    if condition.get("background_flows"):
        seconds = max(seconds, float(background.held_seconds(suite.nominal_seconds(params))))
    return seconds


STARTUP_PLACEMENT = "node"   # the cell placement of start-up and snapshot suites
NODE_KINDS = ("startup", "snapshot")   # suites measured per node, not between endpoints


def check_startup_pods(count: int) -> None:
    """The targets' own guard (specs are checked against the same bound earlier)."""
    if not 1 <= count <= MAX_STARTUP_PODS:
        raise InputError(f"pod start-up: pods must be from 1 to {MAX_STARTUP_PODS}, "
                         f"got {count}")


def get_suite(name: str) -> Suite:
    return SUITES[name]
