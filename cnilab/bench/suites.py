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

from cnilab.bench.executor import Endpoint
from cnilab.bench.params import ParamSpec
from cnilab.bench.parsers import iperf3 as iperf3_parser


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

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Parameters with defaults filled in (the spec has already been validated)."""
        return {name: given.get(name, spec.default) for name, spec in self.params.items()}

    @abstractmethod
    def invocation(self, client: Endpoint, server: Endpoint, params: dict[str, Any]) -> Invocation:
        ...

    @abstractmethod
    def parse(self, client_output: str) -> dict[str, Any]:
        ...


class Iperf3Tcp(Suite):
    name = "iperf3-tcp"
    tool = "iperf3"
    description = "iperf3 TCP bulk transfer, receiver-side throughput (-J)"
    primary_metric = "throughput_gbps"
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


SUITES: dict[str, Suite] = {s.name: s for s in (Iperf3Tcp(),)}


def get_suite(name: str) -> Suite:
    return SUITES[name]
