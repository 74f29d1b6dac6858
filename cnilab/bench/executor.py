"""Where benchmark commands run: the executor interface and the netns implementation.

The suites build command lines; an executor starts servers and runs clients
at endpoints. The netns lab runs them in namespaces; the Kubernetes executor
(cnilab/bench/kube.py) runs them in pods. Suites, placements, repetitions and
parsing are shared. An endpoint's ``locator`` and a started process's handle mean
something only to the executor that made them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from cnilab.bench import cpu
from cnilab.errors import CnilabError


@dataclass(frozen=True)
class Endpoint:
    """One end of a measurement: where to run, and the address peers use."""

    name: str          # e.g. "h1-p1" or "h1"
    host: str          # the (emulated) node it is on
    address: str       # IPv4 address peers connect to
    kind: str          # "pod" | "host" | "service"
    # where commands run, in the executor's own terms: a network namespace (netns
    # executor) or a pod name (Kubernetes executor)
    locator: str | None = None
    bind_address: str | None = None   # where the server listens, if not ``address`` (Services)

    @property
    def listen_address(self) -> str:
        return self.bind_address or self.address


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


@dataclass
class ServerHandle:
    """A process an executor started (a server, or a client in the background). The
    engine passes it back to the executor that made it and looks no further; each
    executor's subclass holds what it needs to wait for and stop the process."""

    endpoint: Endpoint
    argv: list[str]


class ExecutorError(CnilabError):
    pass


@dataclass
class LocalProcess(ServerHandle):
    """A process of this machine (the netns executor's handle)."""

    process: subprocess.Popen[str]


def _local(handle: ServerHandle) -> subprocess.Popen[str]:
    if not isinstance(handle, LocalProcess):
        raise ExecutorError(f"{type(handle).__name__} was not started by the netns executor")
    return handle.process


class Executor(ABC):
    """Runs servers and clients at endpoints."""

    # Whether endpoints run on this machine: then perf counts cycles and taskset pins
    # here. A cluster's endpoints run on its nodes.
    local_machine = True
    cpu_scope = "machine: /proc/stat over the client run"

    @abstractmethod
    def start_server(self, endpoint: Endpoint, argv: list[str]) -> ServerHandle: ...

    @abstractmethod
    def wait_listening(self, handle: ServerHandle, port: int, timeout_s: float = 5.0) -> None: ...

    @abstractmethod
    def run_client(self, endpoint: Endpoint, argv: list[str], timeout_s: float) -> Completed: ...

    @abstractmethod
    def stop_server(self, handle: ServerHandle) -> Completed: ...

    @abstractmethod
    def start_client(self, endpoint: Endpoint, argv: list[str]) -> ServerHandle:
        """Start a client without waiting for it (background load)."""

    @abstractmethod
    def wait_client(self, handle: ServerHandle, timeout_s: float) -> Completed:
        """Wait for a client started with ``start_client``; killed after ``timeout_s``."""

    def interface_packets(self, endpoint: Endpoint, ifname: str = "eth0") -> int | None:
        """Packets sent plus received on an endpoint's interface (None if unknown)."""
        return None

    def interface_mtu(self, endpoint: Endpoint, ifname: str = "eth0") -> int | None:
        """The MTU of an endpoint's interface (None if unknown)."""
        return None

    def cpu_samples(self, endpoints: tuple[Endpoint, ...]) -> dict[str, cpu.CpuSample]:
        """CPU counters of every machine the endpoints run on, by machine name."""
        return {"machine": cpu.sample()}

    def clock_hz(self, endpoint: Endpoint) -> float | None:
        """The CPU clock of the machine ``endpoint`` runs on (None if unknown)."""
        return cpu.clock_hz()


def listening_in(proc_net_tcp: str, port: int) -> bool:
    """Whether ``/proc/net/tcp``-format text (tcp and/or tcp6 tables) has a socket
    in LISTEN state (0A) on ``port``."""
    wanted = f":{port:04X}"
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1].endswith(wanted) and fields[3] == "0A":
            return True
    return False


def _listening(pid: int, port: int) -> bool:
    """Whether the network namespace of ``pid`` has a TCP socket listening on ``port``.

    ``/proc/PID/net/tcp`` shows the sockets of that process's namespace, so no
    helper process is needed to look inside it.
    """
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as fh:
                if listening_in(fh.read(), port):
                    return True
        except OSError:
            return False
    return False


class NetnsExecutor(Executor):
    """Runs commands inside the lab's network namespaces with ``ip netns exec``."""

    @staticmethod
    def _netns(endpoint: Endpoint) -> str:
        if endpoint.locator is None:
            raise ExecutorError(f"endpoint {endpoint.name} has no network namespace")
        return endpoint.locator

    def _argv(self, endpoint: Endpoint, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self._netns(endpoint), *argv]

    def start_server(self, endpoint: Endpoint, argv: list[str]) -> ServerHandle:
        full = self._argv(endpoint, argv)
        # ip execs the tool in place, so the pid is the server's own pid.
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        return LocalProcess(endpoint, full, proc)

    def wait_listening(self, handle: ServerHandle, port: int, timeout_s: float = 5.0) -> None:
        process = _local(handle)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                _, err = process.communicate()
                raise ExecutorError(f"server exited (rc {process.returncode}) before "
                                    f"listening on port {port}: {err.strip()}")
            if _listening(process.pid, port):
                return
            time.sleep(0.01)
        raise ExecutorError(f"server on {handle.endpoint.name} not listening on port {port} "
                            f"after {timeout_s:g} s")

    def start_client(self, endpoint: Endpoint, argv: list[str]) -> ServerHandle:
        return self.start_server(endpoint, argv)

    def wait_client(self, handle: ServerHandle, timeout_s: float) -> Completed:
        proc = _local(handle)
        started = time.monotonic()
        try:
            out, err = proc.communicate(timeout=max(timeout_s, 0.1))
            return Completed(handle.argv, proc.returncode, out, err, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return Completed(handle.argv, -9, out, err, time.monotonic() - started,
                             timed_out=True)

    def run_client(self, endpoint: Endpoint, argv: list[str], timeout_s: float) -> Completed:
        full = self._argv(endpoint, argv)
        started = time.monotonic()
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout_s)
            return Completed(full, proc.returncode, out, err, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return Completed(full, -9, out, err, time.monotonic() - started, timed_out=True)
        except BaseException:        # a signal stopped the run: the client goes with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise

    def interface_packets(self, endpoint: Endpoint, ifname: str = "eth0") -> int | None:
        if endpoint.locator is None:
            return None
        proc = subprocess.run(["ip", "-n", endpoint.locator, "-j", "-s", "link", "show", ifname],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return None
        stats = json.loads(proc.stdout)[0]["stats64"]
        return int(stats["rx"]["packets"]) + int(stats["tx"]["packets"])

    def interface_mtu(self, endpoint: Endpoint, ifname: str = "eth0") -> int | None:
        if endpoint.locator is None:
            return None
        proc = subprocess.run(["ip", "-n", endpoint.locator, "-j", "link", "show", ifname],
                              capture_output=True, text=True, check=False)
        return int(json.loads(proc.stdout)[0]["mtu"]) if proc.returncode == 0 else None

    def stop_server(self, handle: ServerHandle) -> Completed:
        proc = _local(handle)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        return Completed(handle.argv, proc.returncode if proc.returncode is not None else -1,
                         out, err, 0.0)

