"""The Kubernetes executor: the same suites and records, run in benchmark pods.

Servers and clients are pods pinned to named nodes (``nodeName``), with the
pinned tools in their image; hostNetwork variants give the host-network
placement, and a ClusterIP Service in front of the server pod gives the
Service placement. Commands reach the pods through a ``KubeApi``: the real one
(``KubectlApi``) runs ``kubectl`` locally or on the control plane over SSH; the
tests use a fake standing in for the API server.

Process control inside a pod: a server is started as ``sh -c 'echo $$; exec
TOOL ...'`` so its first output line is its pid in the pod, which ``stop``
signals with ``kill`` through a second exec (an exec session's end does not
reliably end the process it started).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cnilab.bench import cpu
from cnilab.bench.executor import (
    Completed,
    Endpoint,
    Executor,
    ExecutorError,
    ServerHandle,
    listening_in,
)

NAMESPACE = "cnilab-bench"
POD_LABEL = "cnilab.io/bench"
BENCH_PORTS = (("iperf3", 5201, "TCP"), ("iperf3-udp", 5201, "UDP"),
               ("netserver", 12865, "TCP"), ("netperf-data", 12866, "TCP"),
               ("netperf-data-udp", 12866, "UDP"))


class ExecSession(Protocol):
    """A running ``kubectl exec``."""

    def poll(self) -> int | None: ...

    def first_line(self, timeout_s: float) -> str | None:
        """The first output line (None if none came in time or the session ended)."""

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """The rest of the output once the session ends (TimeoutExpired if it does not)."""

    def kill(self) -> None: ...


class PopenSession:
    """``ExecSession`` over a local process (``kubectl exec ...``, or ``ssh ... kubectl``)."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self._head = b""

    def poll(self) -> int | None:
        return self.proc.poll()

    def first_line(self, timeout_s: float) -> str | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._head:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._head += chunk
        line, _, self._head = self._head.partition(b"\n")
        return line.decode("utf-8", "replace")

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        head, self._head = self._head, b""
        return (head + out).decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


NodeReader = Callable[[str, str], str]
"""(node name, path) -> the file's text on that node."""


class KubeApi(Protocol):
    """What the executor needs from Kubernetes (pods exist already; see ``bench_pod``)."""

    def exec(self, namespace: str, pod: str, argv: list[str], timeout_s: float) -> Completed: ...

    def exec_start(self, namespace: str, pod: str, argv: list[str]) -> ExecSession: ...


@dataclass
class PodProcess(ServerHandle):
    """A process in a pod (the Kubernetes executor's handle): its exec session, and its
    pid inside the pod (what ``kill`` takes)."""

    session: ExecSession
    pid: int | None = None

    def poll(self) -> int | None:
        return self.session.poll()


def _in_pod(handle: ServerHandle) -> PodProcess:
    if not isinstance(handle, PodProcess):
        raise ExecutorError(f"{type(handle).__name__} was not started by the Kubernetes "
                            "executor")
    return handle


def with_pid(argv: list[str]) -> list[str]:
    """``argv`` run so that its first output line is its pid (``exec`` keeps the pid)."""
    return ["sh", "-c", f"echo $$; exec {shlex.join(argv)}"]


class KubernetesExecutor(Executor):
    """Runs suite commands in benchmark pods through a ``KubeApi``."""

    exec_timeout_s = 30.0   # a kubectl exec must have started the process by then
    local_machine = False
    cpu_scope = ("nodes: /proc/stat of the client's and the server's node, read over SSH "
                 "around the client run, summed (one node when both ends share it)")

    def __init__(self, api: KubeApi, namespace: str = NAMESPACE,
                 node_read: NodeReader | None = None) -> None:
        self.api = api
        self.namespace = namespace
        # reads a node's file without going through the kubelet (None: through the pod)
        self.node_read = node_read
        self._host_ifnames: dict[str, str] = {}

    def _read(self, endpoint: Endpoint, path: str) -> str:
        if self.node_read is not None:
            return self.node_read(endpoint.host, path)
        done = self.api.exec(self.namespace, self._pod(endpoint), ["cat", path], 10.0)
        if done.returncode != 0:
            raise ExecutorError(f"cannot read {path} on {endpoint.host}: {done.stderr.strip()}")
        return done.stdout

    def cpu_samples(self, endpoints: tuple[Endpoint, ...]) -> dict[str, cpu.CpuSample]:
        """Per node: /proc/stat is not namespaced, so any reader on the node sees all
        of the node's CPU time (softirq and encapsulation included)."""
        by_host = {e.host: e for e in endpoints}
        return {host: cpu.parse_stat(self._read(e, "/proc/stat"), f"{host}:/proc/stat")
                for host, e in by_host.items()}

    def clock_hz(self, endpoint: Endpoint) -> float | None:
        try:
            return cpu.parse_clock_hz(self._read(endpoint, "/proc/cpuinfo"))
        except ExecutorError:
            return None

    def _pod(self, endpoint: Endpoint) -> str:
        if endpoint.locator is None:
            raise ExecutorError(f"endpoint {endpoint.name} names no pod")
        return endpoint.locator

    def start_server(self, endpoint: Endpoint, argv: list[str]) -> ServerHandle:
        session = self.api.exec_start(self.namespace, self._pod(endpoint), with_pid(argv))
        line = session.first_line(self.exec_timeout_s)
        if line is None or not line.strip().isdigit():
            session.kill()
            out, err = session.communicate()
            raise ExecutorError(f"could not start {argv[0]} in pod {self._pod(endpoint)}: "
                                f"{(err or out or line or 'no output').strip()[-300:]}")
        return PodProcess(endpoint, argv, session, int(line))

    def start_client(self, endpoint: Endpoint, argv: list[str]) -> ServerHandle:
        return self.start_server(endpoint, argv)

    def wait_listening(self, handle: ServerHandle, port: int, timeout_s: float = 10.0) -> None:
        proc = _in_pod(handle)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out, err = proc.session.communicate()
                raise ExecutorError(f"server in pod {self._pod(handle.endpoint)} exited before "
                                    f"listening on port {port}: {err.strip() or out.strip()}")
            # /proc/net/tcp of the pod: no ss/netstat needed in the image
            done = self.api.exec(self.namespace, self._pod(handle.endpoint),
                                 ["cat", "/proc/net/tcp", "/proc/net/tcp6"], 10.0)
            if listening_in(done.stdout, port):
                return
            time.sleep(0.2)
        raise ExecutorError(f"server in pod {self._pod(handle.endpoint)} not listening on "
                            f"port {port} after {timeout_s:g} s")

    def run_client(self, endpoint: Endpoint, argv: list[str], timeout_s: float) -> Completed:
        return self.api.exec(self.namespace, self._pod(endpoint), argv, timeout_s)

    def wait_client(self, handle: ServerHandle, timeout_s: float) -> Completed:
        proc = _in_pod(handle)
        started = time.monotonic()
        try:
            out, err = proc.session.communicate(timeout=max(timeout_s, 0.1))
            timed_out = False
        except subprocess.TimeoutExpired:
            out, err = self._kill(handle)
            timed_out = True
        code = proc.poll()
        return Completed(handle.argv, -9 if timed_out or code is None else code, out, err,
                         time.monotonic() - started, timed_out)

    def _kill(self, handle: ServerHandle) -> tuple[str, str]:
        """TERM the process inside the pod, end the exec session, return its output."""
        proc = _in_pod(handle)
        if proc.pid is not None:
            self.api.exec(self.namespace, self._pod(handle.endpoint),
                          ["kill", "-TERM", str(proc.pid)], 10.0)
        try:
            return proc.session.communicate(timeout=3.0)
        except subprocess.TimeoutExpired:
            proc.session.kill()
            return proc.session.communicate()

    def stop_server(self, handle: ServerHandle) -> Completed:
        proc = _in_pod(handle)
        if proc.poll() is None:
            out, err = self._kill(handle)
        else:
            out, err = proc.session.communicate()
        code = proc.poll()
        return Completed(handle.argv, code if code is not None else -1, out, err, 0.0)

    def _interface(self, endpoint: Endpoint, ifname: str) -> str:
        """The interface to count on: the pod's own ``eth0``, or for a hostNetwork pod the
        node's interface carrying the endpoint's address (its name differs per node)."""
        if endpoint.kind != "host":
            return ifname
        if endpoint.name not in self._host_ifnames:
            done = self.api.exec(self.namespace, self._pod(endpoint),
                                 ["ip", "-o", "-4", "addr", "show"], 10.0)
            self._host_ifnames[endpoint.name] = interface_with(done.stdout, endpoint.address) \
                or ifname
        return self._host_ifnames[endpoint.name]

    def interface_packets(self, endpoint: Endpoint, ifname: str = "eth0") -> int | None:
        base = f"/sys/class/net/{self._interface(endpoint, ifname)}/statistics"
        done = self.api.exec(self.namespace, self._pod(endpoint),
                             ["cat", f"{base}/rx_packets", f"{base}/tx_packets"], 10.0)
        values = done.stdout.split()
        if done.returncode != 0 or len(values) != 2 or not all(v.isdigit() for v in values):
            return None
        return int(values[0]) + int(values[1])

    def interface_mtu(self, endpoint: Endpoint, ifname: str = "eth0") -> int | None:
        path = f"/sys/class/net/{self._interface(endpoint, ifname)}/mtu"
        done = self.api.exec(self.namespace, self._pod(endpoint), ["cat", path], 10.0)
        value = done.stdout.strip()
        return int(value) if done.returncode == 0 and value.isdigit() else None


def interface_with(ip_o_addr: str, address: str) -> str | None:
    """The interface holding ``address`` in ``ip -o -4 addr show`` output."""
    for line in ip_o_addr.splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] == "inet" and words[3].split("/")[0] == address:
            return words[1].split("@")[0]
    return None


# ------------------------------------------------------------------ manifests


def bench_pod(name: str, node: str, image: str, *, host_network: bool = False,
              role: str = "server", namespace: str = NAMESPACE) -> dict[str, Any]:
    """A benchmark pod pinned to ``node`` that idles until commands are exec'd into it.

    ``nodeName`` bypasses the scheduler (placement is the experiment) and the
    control-plane taint is tolerated so small clusters work. No CPU limit: a CFS quota
    would throttle iperf3/netperf and measure the quota, not the datapath; the small
    requests only let the kubelet admit the nine benchmark pods on two-vCPU nodes.
    """
    spec: dict[str, Any] = {
        "nodeName": node,
        "hostNetwork": host_network,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}],
        "containers": [{
            "name": "bench",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", "infinity"],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                          "limits": {"memory": "256Mi"}},
            "ports": [{"name": n, "containerPort": p, "protocol": proto}
                      for n, p, proto in BENCH_PORTS],
        }],
    }
    if host_network:
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {POD_LABEL: role, f"{POD_LABEL}-pod": name}},
        "spec": spec,
    }


def bench_service(name: str, server_pod: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    """A ClusterIP Service in front of one server pod, with the suites' fixed ports."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "ClusterIP",
            "selector": {f"{POD_LABEL}-pod": server_pod},
            "ports": [{"name": n, "port": p, "targetPort": p, "protocol": proto}
                      for n, p, proto in BENCH_PORTS],
        },
    }


def bench_namespace(namespace: str = NAMESPACE) -> dict[str, Any]:
    """The namespace of the benchmark pods; hostNetwork pods need the privileged Pod
    Security level, stated here rather than left to the cluster's default."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace,
                         "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}


STARTUP_LABEL = "cnilab.io/startup"
FIRST_REPLY_TRIES = 60   # ping -W 1 each: the probe gives up after about a minute


def startup_probe(reference_ip: str) -> list[str]:
    """The start-up pod's command: echo the time it started and the time of the first
    reply from ``reference_ip`` (node clock, ns), then idle. coreutils' date by path:
    busybox's has no %N."""
    loop = ("echo started $(/usr/local/bin/date +%s.%N); "
            f"i=0; until ping -c 1 -W 1 {shlex.quote(reference_ip)} >/dev/null 2>&1; do "
            f"i=$((i+1)); [ $i -ge {FIRST_REPLY_TRIES} ] && echo no-reply && exec sleep "
            "infinity; done; echo first-reply $(/usr/local/bin/date +%s.%N); exec sleep infinity")
    return ["sh", "-c", loop]


def startup_pod(name: str, node: str, image: str, reference_ip: str, batch: str,
                namespace: str = NAMESPACE) -> dict[str, Any]:
    """One pod of a start-up batch: no resource requests (their admission is not what
    is timed), no probes (Ready = the container started), ``nodeName`` as for the bench
    pods."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {STARTUP_LABEL: batch}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                             "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "bench", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": startup_probe(reference_ip)}],
        },
    }


# ------------------------------------------------------------------ kubectl


class Runner(Protocol):
    """Runs a kubectl argv where the kubeconfig is (locally, or on the control plane over
    SSH), optionally feeding it ``input_text`` on stdin."""

    def __call__(self, argv: list[str], timeout: float | None,
                 input_text: str | None = None) -> Completed: ...


Starter = Callable[[list[str]], ExecSession]


class KubectlError(ExecutorError):
    pass


@dataclass
class KubectlApi:
    """``KubeApi`` over the kubectl CLI, plus what a target needs to set pods up."""

    run: Runner
    start: Starter
    kubeconfig: str | None = None

    def _kubectl(self, *args: str) -> list[str]:
        base = ["kubectl"]
        if self.kubeconfig:
            base += ["--kubeconfig", self.kubeconfig]
        return [*base, *args]

    def exec_argv(self, namespace: str, pod: str, argv: list[str]) -> list[str]:
        return self._kubectl("exec", "-n", namespace, pod, "-c", "bench", "--", *argv)

    def exec(self, namespace: str, pod: str, argv: list[str], timeout_s: float) -> Completed:
        return self.run(self.exec_argv(namespace, pod, argv), timeout_s)

    def exec_start(self, namespace: str, pod: str, argv: list[str]) -> ExecSession:
        return self.start(self.exec_argv(namespace, pod, argv))

    def _checked(self, args: list[str], timeout_s: float,
                 input_text: str | None = None) -> Completed:
        done = self.run(self._kubectl(*args), timeout_s, input_text)
        if done.returncode != 0 or done.timed_out:
            how = "timed out" if done.timed_out else f"exit {done.returncode}"
            raise KubectlError(f"kubectl {' '.join(args[:3])} failed ({how}): "
                               f"{(done.stderr or done.stdout).strip()[-400:]}")
        return done

    def apply(self, documents: list[dict[str, Any]], timeout_s: float = 60.0) -> None:
        """``kubectl apply`` of the documents, sent as one v1 List on stdin."""
        listing = {"apiVersion": "v1", "kind": "List", "items": documents}
        self._checked(["apply", "-f", "-"], timeout_s, json.dumps(listing))

    def create_argv(self) -> list[str]:
        return self._kubectl("create", "-f", "-")

    def get(self, kind: str, namespace: str, *, selector: str | None = None,
            name: str | None = None, timeout_s: float = 30.0) -> dict[str, Any]:
        """``kubectl get -o json`` (a List, or one object when ``name`` is given)."""
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if name:
            args.insert(2, name)
        if selector:
            args += ["-l", selector]
        done = self._checked(args, timeout_s)
        try:
            parsed = json.loads(done.stdout)
        except ValueError as exc:
            raise KubectlError(f"kubectl get {kind}: not JSON: {exc}") from None
        return dict(parsed)

    def get_all_namespaces(self, kind: str, selector: str,
                           timeout_s: float = 30.0) -> dict[str, Any]:
        """``kubectl get KIND -A -l SELECTOR -o json`` (a List)."""
        done = self._checked(["get", kind, "-A", "-l", selector, "-o", "json"], timeout_s)
        try:
            return dict(json.loads(done.stdout))
        except ValueError as exc:
            raise KubectlError(f"kubectl get {kind} -A: not JSON: {exc}") from None

    def raw(self, path: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """``kubectl get --raw PATH``: a JSON document the API server serves or proxies."""
        done = self._checked(["get", "--raw", path], timeout_s)
        try:
            return dict(json.loads(done.stdout))
        except ValueError as exc:
            raise KubectlError(f"kubectl get --raw {path}: not JSON: {exc}") from None

    def logs(self, namespace: str, pod: str, timeout_s: float = 20.0) -> Completed:
        return self.run(self._kubectl("logs", "-n", namespace, pod, "-c", "bench"), timeout_s)

    def delete(self, kind: str, namespace: str, *, selector: str | None = None,
               name: str | None = None, timeout_s: float = 180.0) -> None:
        """Delete and wait until gone; absent objects are not an error."""
        args = ["delete", kind, "--ignore-not-found", "--wait=true", f"--timeout={int(timeout_s)}s"]
        if kind != "namespace":
            args += ["-n", namespace]
        if name:
            args.insert(2, name)
        if selector:
            args += ["-l", selector]
        self._checked(args, timeout_s + 10.0)
