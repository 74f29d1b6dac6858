"""Background load: N concurrent paced TCP flows held while a foreground test measures.

The extended paper loads the datapath with many 10 Mbit/s flows and watches the
foreground throughput and latency (and where the machine's CPU saturates).
Flows are iperf3 TCP streams paced with ``-b`` (applied per stream), grouped at
most ``FLOWS_PER_PROCESS`` to one iperf3 client (its ``-P`` limit is 128), each
group with its own server port. Every process runs for a bounded time: the
foreground's length plus a lead-in and a tail, and it is killed if it overruns.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from cnilab.bench.executor import Endpoint, Executor, ServerHandle

FLOWS_PER_PROCESS = 100
BASE_PORT = 5301
LEAD_S = 1.0     # flows ramp up before the foreground starts
TAIL_S = 2.0     # and outlast it


@dataclass
class BackgroundLoad:
    flows: int
    rate_mbps: int
    servers: list[ServerHandle] = field(default_factory=list)
    clients: list[ServerHandle] = field(default_factory=list)
    deadline: float = 0.0
    error: str | None = None


def groups(flows: int) -> list[int]:
    """Split ``flows`` into per-process stream counts (as even as possible)."""
    if flows <= 0:
        return []
    n = math.ceil(flows / FLOWS_PER_PROCESS)
    base, extra = divmod(flows, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def held_seconds(seconds: float) -> int:
    """How long the flows run around a foreground test of ``seconds`` (iperf3 -t takes
    whole seconds)."""
    return math.ceil(seconds + LEAD_S + TAIL_S)


def start(executor: Executor, client: Endpoint, server: Endpoint, flows: int, rate_mbps: int,
          seconds: float) -> BackgroundLoad:
    """Start the flows and return once they have had ``LEAD_S`` to ramp up."""
    load = BackgroundLoad(flows, rate_mbps)
    duration = held_seconds(seconds)
    streams_per_process = groups(flows)
    try:
        for i, _ in enumerate(streams_per_process):
            handle = executor.start_server(server, [
                "iperf3", "--server", "--one-off", "--json", "--bind", server.listen_address,
                "--port", str(BASE_PORT + i)])
            load.servers.append(handle)
        for i, handle in enumerate(load.servers):
            executor.wait_listening(handle, BASE_PORT + i)
        for i, streams in enumerate(streams_per_process):
            load.clients.append(executor.start_client(client, [
                "iperf3", "--client", server.address, "--port", str(BASE_PORT + i), "--json",
                "--parallel", str(streams), "--bitrate", f"{rate_mbps}M",
                "--time", str(duration)]))
    except Exception:
        stop(executor, load)
        raise
    load.deadline = time.monotonic() + duration + 10.0
    time.sleep(LEAD_S)
    return load


def stop(executor: Executor, load: BackgroundLoad) -> dict[str, Any]:
    """Wait for the flows to end (bounded), stop the servers, and report what ran."""
    achieved = 0.0
    problems: list[str] = []
    outputs: list[str] = []
    for handle in load.clients:
        done = executor.wait_client(handle, load.deadline - time.monotonic())
        outputs.append(done.stdout)
        try:
            data = json.loads(done.stdout)
            if "error" in data:
                problems.append(str(data["error"]))
            else:
                achieved += float(data["end"]["sum_received"]["bits_per_second"])
        except (json.JSONDecodeError, KeyError, TypeError):
            problems.append(f"background client exited {done.returncode}: "
                            f"{done.stderr.strip()[-200:]}")
    for handle in load.servers:
        with contextlib.suppress(Exception):
            executor.stop_server(handle)
    return {
        "background_flows": load.flows,
        "background_rate_mbps": load.rate_mbps,
        "background_processes": len(load.clients),
        "background_achieved_mbps": round(achieved / 1e6, 3),
        "background_errors": problems,
        "outputs": outputs,
    }
