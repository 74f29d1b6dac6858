"""The Kubernetes executor: command construction, manifests, and real measurements
through it with a fake standing in for the Kubernetes API server.

``FakeKubeApi`` is the only fake: no API server can run here. Its "pods" are
the netns lab's pods and an exec runs the command in that pod's namespace, so
iperf3 and netperf run for real and the executor's process control (pid
capture, kill through a second exec, listening check through /proc/net/tcp)
is exercised end to end.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import processes
import pytest
import yaml

from cnilab.bench.engine import Measurement, measure
from cnilab.bench.executor import Completed, Endpoint, ExecutorError
from cnilab.bench.kube import (
    BENCH_PORTS,
    KubectlApi,
    KubernetesExecutor,
    PopenSession,
    bench_pod,
    bench_service,
    with_pid,
)
from cnilab.lab import core
from cnilab.lab.plan import LabPlan, make_plan
from cnilab.rundir import RunDir
from cnilab.spec import Cell


class FakeKubeApi:
    """Fake Kubernetes API (named as such): pod name -> lab network namespace."""

    def __init__(self, pods: dict[str, str]) -> None:
        self.pods = pods
        self.calls: list[tuple[str, str, list[str]]] = []

    def _argv(self, namespace: str, pod: str, argv: list[str]) -> list[str]:
        self.calls.append((namespace, pod, argv))
        return ["ip", "netns", "exec", self.pods[pod], *argv]

    def exec(self, namespace: str, pod: str, argv: list[str], timeout_s: float) -> Completed:
        full = self._argv(namespace, pod, argv)
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
        return Completed(full, proc.returncode, proc.stdout, proc.stderr, 0.0)

    def exec_start(self, namespace: str, pod: str, argv: list[str]) -> PopenSession:
        return PopenSession(self._argv(namespace, pod, argv))


def test_kubectl_exec_command_line() -> None:
    seen: list[list[str]] = []

    def run(argv: list[str], timeout: float | None) -> Completed:
        seen.append(argv)
        return Completed(argv, 0, "", "", 0.0)

    api = KubectlApi(run=run, start=lambda argv: PopenSession(["true"]),
                     kubeconfig="/etc/kubernetes/admin.conf")
    api.exec("cnilab-bench", "srv-node2", ["iperf3", "--server"], 10.0)
    assert seen == [["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "exec", "-n",
                     "cnilab-bench", "srv-node2", "-c", "bench", "--", "iperf3", "--server"]]
    assert with_pid(["netserver", "-D", "-L", "10.0.0.1"]) == [
        "sh", "-c", "echo $$; exec netserver -D -L 10.0.0.1"]


def test_bench_pod_and_service_manifests() -> None:
    pod = bench_pod("srv-node2", "node2", "registry.example/bench@sha256:" + "0" * 64)
    spec = pod["spec"]
    assert spec["nodeName"] == "node2" and spec["hostNetwork"] is False
    container = spec["containers"][0]
    assert "cpu" not in container["resources"]["limits"]     # no CFS quota on the tools
    assert {(p["containerPort"], p["protocol"]) for p in container["ports"]} == {
        (5201, "TCP"), (5201, "UDP"), (12865, "TCP"), (12866, "TCP"), (12866, "UDP")}
    host = bench_pod("hn-node1", "node1", "img", host_network=True, role="client")
    assert host["spec"]["hostNetwork"] is True
    assert host["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"
    svc = bench_service("bench", "srv-node2")
    selector = svc["spec"]["selector"]
    assert all(pod["metadata"]["labels"][k] == v for k, v in selector.items())
    assert len(svc["spec"]["ports"]) == len(BENCH_PORTS)
    assert len({p["name"] for p in svc["spec"]["ports"]}) == len(BENCH_PORTS)


@pytest.fixture
def lab(clean_lab: None) -> Iterator[LabPlan]:
    plan = make_plan("flannel", "vxlan")
    core.preflight(plan)
    core.ensure_hosts(plan)
    core.ensure_datapath(plan)
    core.ensure_pods(plan)
    core.ensure_endpoints(plan)
    yield plan
    core.down()


@pytest.mark.root
@pytest.mark.e2e
@pytest.mark.parametrize("suite", ["iperf3-tcp", "netperf-tcp-rr"])
def test_measurement_through_the_kubernetes_executor(suite: str, lab: LabPlan,
                                                     tmp_path: Path) -> None:
    plan = lab
    h1p1, h2p1 = plan.hosts[0].pods[0], plan.hosts[1].pods[0]
    api = FakeKubeApi({"client-node1": h1p1.netns, "server-node2": h2p1.netns})
    client = Endpoint("client-node1", "h1", core.pod_address(plan, h1p1), "pod", "client-node1")
    server = Endpoint("server-node2", "h2", core.pod_address(plan, h2p1), "pod", "server-node2")
    run = RunDir(tmp_path)
    (tmp_path / "raw").mkdir()
    short = (("duration_s", 1), ("omit_s", 0)) if suite == "iperf3-tcp" else (("duration_s", 1),)
    cell = Cell("flannel", "vxlan", "inter-host", suite, short)
    record = measure(KubernetesExecutor(api), Measurement(cell, 1), client, server, run, 1,
                     pin=False)
    assert record["status"] == "ok", record["error"]
    metric = "throughput_gbps" if suite == "iperf3-tcp" else "transactions_per_s"
    assert record["metrics"][metric] > 0
    assert record["metrics"]["client_interface_packets"] > 0   # read in the pod via exec
    # every command went to the named pod in the benchmark namespace
    assert {pod for _, pod, _ in api.calls} == {"client-node1", "server-node2"}
    assert {ns for ns, _, _ in api.calls} == {"cnilab-bench"}
    # the server was stopped through its pid (netserver daemonises, iperf3 ends by itself)
    assert processes.live("netserver|iperf3") == []


@pytest.mark.root
@pytest.mark.e2e
def test_server_that_cannot_start_is_an_executor_error(lab: LabPlan) -> None:
    plan = lab
    api = FakeKubeApi({"server-node2": plan.hosts[1].netns})
    executor = KubernetesExecutor(api)
    server = Endpoint("server-node2", "h2", "10.99.0.250", "host", "server-node2")
    handle = executor.start_server(server, ["iperf3", "--server", "--bind", "10.99.0.250",
                                            "--port", "5201"])
    with pytest.raises(ExecutorError, match="exited before listening on port 5201"):
        executor.wait_listening(handle, 5201, timeout_s=5)


@pytest.mark.parametrize("host_network", [False, True])
def test_bench_manifests_validate_strictly_for_the_pinned_kubernetes(host_network: bool) -> None:
    """The pods and Service the Kubernetes executor creates are valid objects for the
    pinned Kubernetes minor (offline schemas, unknown fields rejected)."""
    import kubernetes_validate

    from cnilab.bench.kube import bench_pod, bench_service

    pins = yaml.safe_load((Path(__file__).resolve().parent.parent / "versions" /
                            "kubernetes.yml").read_text())["profiles"]["current"]
    version = ".".join(pins["kubernetes"].split(".")[:2]) + ".0"
    pod = bench_pod("cnilab-srv", "w1", "registry.example/bench@sha256:" + "0" * 64,
                    host_network=host_network)
    kubernetes_validate.validate(pod, version, strict=True)
    kubernetes_validate.validate(bench_service("cnilab-svc", "cnilab-srv"), version,
                                 strict=True)
    broken = {**pod, "spec": {**pod["spec"], "nodename": "w1"}}     # a misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_host_network_interface_found_by_address() -> None:
    from cnilab.bench.kube import interface_with

    listing = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
               "2: enp1s0f0    inet 10.10.1.2/24 brd 10.10.1.255 scope global enp1s0f0\n"
               "7: vlan5@enp1s0f1    inet 10.10.5.2/24 scope global vlan5\n")
    assert interface_with(listing, "10.10.1.2") == "enp1s0f0"
    assert interface_with(listing, "10.10.5.2") == "vlan5"
    assert interface_with(listing, "10.10.9.9") is None
