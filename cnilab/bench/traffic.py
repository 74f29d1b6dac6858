"""One traffic measurement, in three stages: observe, keep, interpret.

Why three: running the tools (servers, background load, counters around the client),
saving what they printed, and turning that into a suite's metrics fail in different
ways and change for different reasons. ``observe`` only runs things and returns what it
saw; ``save_raw`` only writes the tools' outputs into the run directory; ``metrics``
only interprets an observation. The engine composes them into a record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnilab.bench import background as bg
from cnilab.bench import cpu, perf
from cnilab.bench.executor import Completed, Endpoint, Executor, ExecutorError, ServerHandle
from cnilab.bench.parsers import ParseError
from cnilab.bench.suites import Invocation, TrafficSuite
from cnilab.bench.sweeps import Condition


@dataclass(frozen=True)
class BackgroundPlan:
    """Background flows to run on their own endpoint pair during the measurement."""

    client: Endpoint
    server: Endpoint
    flows: int
    rate_mbps: int
    seconds: float


@dataclass
class Observation:
    """What one measurement saw, uninterpreted."""

    client: Completed | None = None            # the measuring client, once it ran
    server_output: str = ""                    # the server's stdout when it was stopped
    per_machine_cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    packets: int | None = None                 # on the client's interface, over the run
    clock_hz: float | None = None
    mtu: int | None = None
    cycles: float | None = None                # perf, where counted
    background: dict[str, Any] | None = None   # the load's report, outputs included
    error: str | None = None                   # what stopped the measurement, if anything


def observe(executor: Executor, inv: Invocation, client: Endpoint, server: Endpoint, *,
            background: BackgroundPlan | None, perf_csv: Path, counting: bool) -> Observation:
    """Run one measurement: server up and listening, background load, counters and the
    client run, then everything stopped again (whatever failed). Never raises for an
    executor failure: it is the observation's ``error``."""
    seen = Observation()
    handle: ServerHandle | None = None
    load: bg.BackgroundLoad | None = None
    try:
        handle = executor.start_server(server, inv.server_argv)
        executor.wait_listening(handle, inv.port)
        if background is not None:
            load = bg.start(executor, background.client, background.server, background.flows,
                            background.rate_mbps, background.seconds)
        packets_before = executor.interface_packets(client)
        cpu_before = executor.cpu_samples((client, server))
        with perf.CycleCounter(perf_csv, enabled=counting) as counter:
            seen.client = executor.run_client(client, inv.client_argv, inv.timeout_s)
        cpu_after = executor.cpu_samples((client, server))
        seen.per_machine_cpu = {m: cpu.delta_seconds(cpu_before[m], cpu_after[m])
                                for m in cpu_before if m in cpu_after}
        packets_after = executor.interface_packets(client)
        if packets_before is not None and packets_after is not None:
            seen.packets = packets_after - packets_before
        if not seen.client.timed_out:
            seen.clock_hz = executor.clock_hz(client)
            seen.mtu = executor.interface_mtu(client)
            seen.cycles = counter.cycles()
    except ExecutorError as exc:
        seen.error = str(exc)
    finally:
        if load is not None:
            seen.background = bg.stop(executor, load)
        if handle is not None:
            seen.server_output = executor.stop_server(handle).stdout
    return seen


@dataclass(frozen=True)
class RawFiles:
    """Where a measurement's raw outputs go (``run.raw_path`` names)."""

    client: Path
    server: Path
    background: Path
    root: Path               # the run directory: record paths are relative to it

    @property
    def perf_csv(self) -> Path:
        return self.client.with_suffix(".perf.csv")


def save_raw(seen: Observation, files: RawFiles) -> dict[str, str]:
    """Write what the tools printed; returns the record's ``raw`` entries."""
    raw: dict[str, str] = {}

    def keep(role: str, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        raw[role] = path.relative_to(files.root).as_posix()

    if seen.client is not None:
        keep("client", files.client, seen.client.stdout)
        if seen.client.stderr.strip():
            keep("client_stderr", files.client.with_suffix(".stderr.txt"), seen.client.stderr)
    if seen.background is not None:
        keep("background", files.background, json.dumps(seen.background["outputs"]))
    if seen.server_output.strip():
        keep("server", files.server, seen.server_output)
    return raw


@dataclass
class Interpreted:
    """An observation turned into the record's outcome."""

    status: str = "failed"
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)   # further record fields


def metrics(suite: TrafficSuite, inv: Invocation, seen: Observation, client: Endpoint,
            server: Endpoint) -> Interpreted:
    """The suite's metrics, CPU cost and background report of one observation."""
    out = Interpreted()
    result = seen.client
    if result is not None:
        out.fields["exit_status"] = result.returncode
    if seen.error is not None:
        out.error = seen.error
    elif result is not None and result.timed_out:
        out.status = "timeout"
        out.error = f"client did not finish within {inv.timeout_s:g} s"
    elif result is not None:
        try:
            out.metrics = suite.parse(result.stdout)
            _add_costs(out, seen, client, server)
            out.status = "ok" if result.returncode == 0 else "failed"
            if result.returncode != 0:
                out.error = f"client exited {result.returncode}: " + result.stderr.strip()[-500:]
        except ParseError as exc:
            out.error = f"{exc}; stderr: {result.stderr.strip()[-500:]}"
    if seen.background is not None:
        report = {k: v for k, v in seen.background.items() if k != "outputs"}
        out.fields["background"] = report
        out.metrics["background_achieved_mbps"] = report["background_achieved_mbps"]
        if report["background_errors"] and out.status == "ok":
            out.status = "failed"
            out.error = "background load did not run as planned: " + \
                "; ".join(report["background_errors"])[:500]
    return out


def _add_costs(out: Interpreted, seen: Observation, client: Endpoint, server: Endpoint) -> None:
    """CPU time, per-node shares, packets and the per-packet costs."""
    used = cpu.combined(seen.per_machine_cpu)
    out.metrics.update(used)
    if len(seen.per_machine_cpu) > 1:   # the two ends on different nodes: each one's share
        out.fields["cpu_machines"] = seen.per_machine_cpu
        for role, end in (("client", client), ("server", server)):
            if end.host in seen.per_machine_cpu:
                out.metrics[f"{role}_node_cpu_busy_s"] = \
                    seen.per_machine_cpu[end.host]["cpu_busy_s"]
    if seen.packets is not None:
        out.metrics["client_interface_packets"] = seen.packets
    out.metrics.update(cpu.cost_metrics(used, out.metrics, seen.packets, seen.clock_hz,
                                        seen.mtu))
    if seen.cycles is not None:
        out.metrics["perf_cycles"] = seen.cycles
        busy = out.metrics["cpu_busy_s"]
        scale = seen.cycles / (busy * (seen.clock_hz or 1)) if busy else 0
        if seen.packets:
            out.metrics["cycles_per_packet"] = seen.cycles / seen.packets
        if scale and "cycles_per_mtu_packet" in out.metrics:
            # same segment count, counted cycles instead of busy time x clock
            out.metrics["cycles_per_mtu_packet"] *= scale


def background_plan(condition: Condition, pair: tuple[Endpoint, Endpoint] | None,
                    seconds: float) -> BackgroundPlan | None:
    if not condition.background_flows or pair is None:
        return None
    return BackgroundPlan(pair[0], pair[1], condition.background_flows,
                          condition.background_rate_mbps, seconds)
