"""FAKE Kubernetes API server and control-plane kubectl, for the cluster target's tests.

No API server, kubelet or kubeadm can run on the build machine. This fake stands in
for exactly those: it interprets the kubectl command lines the cluster target sends
(apply, get, exec, delete), validates every applied object strictly against the
pinned Kubernetes schemas (as an API server would reject it), and places "pods" onto
the netns lab's pods and hosts. Everything below the API is real: the lab's datapath
(bridges, VXLAN, routes, kube-proxy's iptables DNAT for the Service), iperf3, netperf,
ping, iptables on the "nodes".

As on a real node, a pod that is not on the host network cannot start on a node whose
CNI is not in place: the kubelet cannot create its sandbox while the runtime reports the
network not ready, so the pod stays Pending with its container waiting in
ContainerCreating (kubelet: "network is not ready: container runtime network not ready:
... cni plugin not initialized"). ``networked`` holds the nodes whose CNI is in place;
a switch (which built the mode's datapath) marks them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import yaml

from cnilab.bench.executor import Completed
from cnilab.bench.kube import PopenSession
from cnilab.lab import core, kube_proxy
from cnilab.lab.plan import LabPlan

ROOT = Path(__file__).resolve().parent.parent


def _kubernetes_version() -> str:
    pins = yaml.safe_load((ROOT / "versions" / "kubernetes.yml").read_text())
    return ".".join(pins["profiles"]["current"]["kubernetes"].split(".")[:2]) + ".0"


class FakeKubectl:
    """FAKE: kubectl + API server over a netns lab. ``nodes`` maps node names to lab hosts."""

    def __init__(self, plan: LabPlan, nodes: dict[str, str]) -> None:
        self.plan = plan
        self.hosts = {h.name: h for h in plan.hosts}
        self.nodes = nodes
        self.networked: set[str] = set()      # nodes whose CNI is in place
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.placed: dict[str, str] = {}     # pod -> netns
        self.calls: list[list[str]] = []
        # FAKE kube-system pods: the plugin's agent as a kubelet reports it
        self.system_pods = [{"metadata": {"name": "agent-1", "namespace": "kube-system"},
                             "status": {"containerStatuses": [{
                                 "image": "example.invalid/cni-agent:v1",
                                 "imageID": "example.invalid/cni-agent@sha256:" + "d" * 64}]}}]

    def _place(self, pod: dict[str, Any]) -> str:
        host = self.hosts[self.nodes[pod["spec"]["nodeName"]]]
        if pod["spec"].get("hostNetwork"):
            return host.netns
        used = set(self.placed.values())
        free = [p for p in host.pods if p.netns not in used]
        return free[0].netns

    def _address(self, pod_name: str) -> str:
        netns = self.placed[pod_name]
        for host in self.plan.hosts:
            if host.netns == netns:
                return host.underlay_ip
            for p in host.pods:
                if p.netns == netns:
                    return core.pod_address(self.plan, p)
        raise KeyError(pod_name)

    def _pod_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        name = pod["metadata"]["name"]
        if not pod["spec"].get("hostNetwork") and pod["spec"]["nodeName"] not in self.networked:
            return {**pod, "status": {
                "phase": "Pending",
                "conditions": [{"type": "Ready", "status": "False",
                                "reason": "ContainersNotReady"}],
                "containerStatuses": [{"name": pod["spec"]["containers"][0]["name"],
                                       "ready": False, "state": {"waiting": {
                                           "reason": "ContainerCreating",
                                           "message": "network is not ready: container "
                                                      "runtime network not ready: "
                                                      "NetworkReady=false reason:Network"
                                                      "PluginNotReady message:Network plugin "
                                                      "returns error: cni plugin not "
                                                      "initialized"}}}]}}
        return {**pod, "status": {"phase": "Running", "podIP": self._address(name),
                                  "conditions": [{"type": "Ready", "status": "True"}],
                                  "containerStatuses": [{"image": pod["spec"]["containers"]
                                                         [0]["image"],
                                                         "imageID": pod["spec"]["containers"]
                                                         [0]["image"],
                                                         "state": {"running": {}}}]}}

    def run(self, argv: list[str], timeout: float | None,
            input_text: str | None = None) -> Completed:
        self.calls.append(argv)
        args = argv[1:]
        if args[:1] == ["--kubeconfig"]:
            args = args[2:]
        verb = args[0]
        if verb == "exec":
            pod = args[3]
            command = args[args.index("--") + 1:]
            full = ["ip", "netns", "exec", self.placed[pod], *command]
            proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                                  check=False)
            return Completed(argv, proc.returncode, proc.stdout, proc.stderr, 0.0)
        if verb == "apply":
            import kubernetes_validate

            assert input_text is not None
            for item in json.loads(input_text)["items"]:
                kubernetes_validate.validate(item, _kubernetes_version(), strict=True)
                key = (item["kind"], item["metadata"]["name"])
                self.objects[key] = item
                if item["kind"] == "Pod":
                    self.placed[item["metadata"]["name"]] = self._place(item)
                if item["kind"] == "Service":
                    backend = [n for (k, n), o in self.objects.items() if k == "Pod" and all(
                        o["metadata"]["labels"].get(lk) == lv
                        for lk, lv in item["spec"]["selector"].items())]
                    # the lab's kube-proxy rules send the ClusterIP to this one pod
                    assert [self.placed[b] for b in backend] == [
                        self.plan.hosts[1].pods[0].netns], backend
            return Completed(argv, 0, "applied", "", 0.0)
        if verb == "get" and args[1] == "--raw":
            return self._raw(argv, args[2])
        if verb == "get" and "-A" in args:
            return Completed(argv, 0, json.dumps({"items": self._agents(
                args[args.index("-l") + 1])}), "", 0.0)
        if verb == "get":
            kind = args[1]
            if kind == "service":
                return Completed(argv, 0, json.dumps(
                    {"spec": {"clusterIP": kube_proxy.service_ip(self.plan)}}), "", 0.0)
            namespace = args[args.index("-n") + 1]
            if namespace == "kube-system":
                return Completed(argv, 0, json.dumps({"items": self.system_pods}), "", 0.0)
            items = [self._pod_status(o) for (k, _), o in self.objects.items() if k == "Pod"]
            return Completed(argv, 0, json.dumps({"items": items}), "", 0.0)
        if verb == "delete":
            if args[1] == "namespace":
                self.objects.clear()
                self.placed.clear()
            return Completed(argv, 0, "", "", 0.0)
        return Completed(argv, 1, "", f"FAKE API: '{verb}' is not implemented", 0.0)

    # FAKE: the working set each plugin's agent pod reports, in MiB (made up; the real
    # numbers are what M1 measures on a cluster)
    AGENT_MIB: ClassVar[dict[str, int]] = {"flannel": 45, "calico": 180, "weave": 170,
                                           "cilium": 190, "kube-router": 48}

    def _agents(self, selector: str) -> list[dict[str, Any]]:
        """The plugin's agent pods, one per node, labelled as its DaemonSet's pods are
        (the catalog's selector must match them, as on a real cluster)."""
        from cnilab.modes import plugin_facts

        key, _, value = plugin_facts()[self.plan.cni].daemonset_selector.partition("=")
        wanted = dict(part.split("=", 1) for part in selector.split(","))
        if wanted != {key: value}:
            return []
        return [{"metadata": {"name": f"{self.plan.cni}-agent-{node}", "namespace":
                              "kube-system", "uid": f"uid-{node}", "labels": {key: value}},
                 "spec": {"nodeName": node}} for node in sorted(self.nodes)]

    def _raw(self, argv: list[str], path: str) -> Completed:
        """``GET /api/v1/nodes/NODE/proxy/stats/summary``: the kubelet Summary API, shaped
        as k8s.io/kubelet/pkg/apis/stats/v1alpha1 (PodStats: podRef, containers, memory;
        MemoryStats: time, usageBytes, workingSetBytes, rssBytes)."""
        parts = path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "nodes"] or parts[4:] != ["proxy", "stats", "summary"]:
            return Completed(argv, 1, "", f"FAKE API: no raw path {path}", 0.0)
        node = parts[3]
        if node not in self.nodes:
            return Completed(argv, 1, "", f'Error from server (NotFound): nodes "{node}" '
                             "not found", 0.0)
        working_set = self.AGENT_MIB[self.plan.cni] * 1024 * 1024
        stamp = "2026-11-30T12:00:00Z"
        agent = {"podRef": {"name": f"{self.plan.cni}-agent-{node}", "namespace": "kube-system",
                            "uid": f"uid-{node}"},
                 "containers": [{"name": "agent", "memory": {
                     "time": stamp, "usageBytes": working_set + 4096,
                     "workingSetBytes": working_set, "rssBytes": working_set // 2},
                     "cpu": {"time": stamp, "usageNanoCores": 20_000_000,
                             "usageCoreNanoSeconds": 123_000_000_000}}],
                 "cpu": {"time": stamp, "usageNanoCores": 20_000_000,
                         "usageCoreNanoSeconds": 123_000_000_000},
                 "memory": {"time": stamp, "usageBytes": working_set + 8192,
                            "workingSetBytes": working_set, "rssBytes": working_set // 2}}
        other = {"podRef": {"name": "coredns-x", "namespace": "kube-system", "uid": "uid-dns"},
                 "containers": [{"name": "coredns", "memory": {"time": stamp,
                                                               "workingSetBytes": 12345678}}]}
        return Completed(argv, 0, json.dumps({"node": {"nodeName": node}, "pods": [agent, other]}),
                         "", 0.0)

    def start(self, argv: list[str]) -> PopenSession:
        self.calls.append(argv)
        args = argv[3:] if argv[1] == "--kubeconfig" else argv[1:]
        pod = args[3]
        return PopenSession(["ip", "netns", "exec", self.placed[pod],
                             *args[args.index("--") + 1:]])


class LabNodeShell:
    """A "node" reached over SSH = a lab host namespace (commands run there for real);
    ``files`` maps node paths to files of this machine (the image record)."""

    def __init__(self, netns: str, kubectl: FakeKubectl | None,
                 files: dict[str, Path]) -> None:
        self.netns = netns
        self.kubectl = kubectl
        self.files = files

    def run(self, argv: list[str], timeout: float | None,
            input_text: str | None = None) -> Completed:
        if argv[:1] == ["kubectl"] and self.kubectl is not None:
            return self.kubectl.run(argv, timeout, input_text)
        argv = [str(self.files.get(a, a)) for a in argv]
        proc = subprocess.run(["ip", "netns", "exec", self.netns, *argv], input=input_text,
                              capture_output=True, text=True, timeout=timeout, check=False)
        return Completed(argv, proc.returncode, proc.stdout, proc.stderr, 0.0)

    def start(self, argv: list[str]) -> PopenSession:
        assert self.kubectl is not None and argv[:1] == ["kubectl"]
        return self.kubectl.start(argv)

    def read_file(self, path: str, timeout: float = 10.0) -> str:
        done = self.run(["cat", path], timeout)
        if done.returncode != 0:
            raise OSError(f"cannot read {path}: {done.stderr.strip()}")
        return done.stdout

    def clock_offset(self) -> tuple[float, float]:
        return 0.0, 0.0      # every "node" is this machine

    def close(self) -> None:
        pass
