"""A kubeadm cluster as a benchmark target: one inventory, every plugin and mode in turn.

``up`` is the switch a user runs by hand (``cnilab switch``): reset every node to its
clean baseline, kubeadm init/join, install the plugin in the mode through its role
(which fails unless every node runs the intended datapath), collect the node facts.
Then the benchmark pods go up on two named nodes, with the node-built image by digest,
and a readiness gate pings pod to pod within a node and across nodes: a run fails
rather than measuring a cluster whose pod network does not carry traffic.

Pods (nodes A and B are the inventory's first two workers, or the control plane when
there are fewer):

    cli-a, srv-a        intra-host pair on A
    srv-b               inter-host server on B (cli-a is the client)
    svc-b               ClusterIP Service in front of srv-b
    bgc-a, bgs-a, bgs-b background-load client and servers (same hosts, own sockets)
    host-a, host-b      hostNetwork pods: the nodes' own stack, no CNI on the path

Node-level work (CPU counters, filter rules, clocks) goes over SSH to the node, not
through the kubelet, so it neither waits on nor loads the API server.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cnilab.ansible_engine import Progress
from cnilab.bench import kube_startup
from cnilab.bench.executor import Completed, Endpoint, Executor, ExecutorError
from cnilab.bench.filter_rules import rule_steps
from cnilab.bench.kube import (
    NAMESPACE,
    ExecSession,
    KubectlApi,
    KubectlError,
    KubernetesExecutor,
    bench_namespace,
    bench_pod,
    bench_service,
)
from cnilab.cluster import operations
from cnilab.errors import CnilabError, InputError
from cnilab.inventory import Node, load_inventory
from cnilab.kube_objects import condition, waiting
from cnilab.spec import ModeRef
from cnilab.targets.base import Target

ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
IMAGE_RECORD = "/var/lib/cnilab/bench-image.tar.json"   # written by roles/bench_image
SERVICE = "svc-b"
READY_TIMEOUT_S = 300.0
PLANNING_NODE_MTU = 1500
# the idle check after a mode comes up: how long both nodes are watched, and how busy a
# node may be with nothing measured, its CNI agents aside (kubelet, containerd and the
# control plane's housekeeping stay well below this on an idle node)
IDLE_WINDOW_S = 2.0
# the readiness gate's echo: three, each sent as soon as the last is answered (-A: busybox
# 1.35's `ping --help`, "Ping as soon as reply is received", the ping the bench image
# carries; iputils' adaptive ping alike), 2 s for a late reply
GATE_PING = ("ping", "-c", "3", "-A", "-W", "2")
IDLE_LIMIT = 0.10


class NodeShell(Protocol):
    """What the target needs on a node (``cnilab.cluster.ssh.NodeShell`` over SSH)."""

    def run(self, argv: list[str], timeout: float | None,
            input_text: str | None = None) -> Completed: ...

    def start(self, argv: list[str]) -> ExecSession: ...

    def read_file(self, path: str, timeout: float = 10.0) -> str: ...

    def clock_offset(self) -> tuple[float, float]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BenchPod:
    name: str
    side: str            # "a" or "b": which of the two nodes
    host_network: bool = False
    role: str = "server"


PODS = (BenchPod("cli-a", "a", role="client"), BenchPod("srv-a", "a"), BenchPod("srv-b", "b"),
        BenchPod("bgc-a", "a", role="client"), BenchPod("bgs-a", "a"), BenchPod("bgs-b", "b"),
        BenchPod("host-a", "a", True, "client"), BenchPod("host-b", "b", True))


def bench_nodes(nodes: list[Node]) -> tuple[Node, Node]:
    """Nodes A and B: the first two workers (the paper's two worker hosts), or the
    control plane and a worker on a two-node cluster."""
    ordered = ([n for n in nodes if n.group == "workers"] +
               [n for n in nodes if n.group != "workers"])
    if len(ordered) < 2:
        raise InputError("a cluster benchmark needs at least two nodes in the inventory "
                         "(intra-host and inter-host placements)")
    return ordered[0], ordered[1]


Provision = Callable[[operations.CniChoice, Path], Path]
Connect = Callable[[Node], NodeShell]


def _ssh(node: Node) -> NodeShell:
    from cnilab.cluster.ssh import NodeShell as SshShell

    return SshShell(node)


class ClusterTarget(Target):
    kind = "cluster"
    emulation = False
    skips_modes_that_fail_to_come_up = True

    def __init__(self, inventory: Path, profile: str = "current", *,
                 replace_kube_proxy: bool = False, provision: Provision | None = None,
                 connect: Connect = _ssh, progress: Progress | None = None,
                 manifest_cache: Path | None = None, fetch_to_plan: bool = True) -> None:
        if not inventory.is_file():
            raise InputError(f"{inventory}: no such inventory file")
        self.inventory = inventory
        self.profile = profile
        operations.kubernetes_profile(profile)
        self.nodes = load_inventory(inventory)
        self.node_a, self.node_b = bench_nodes(self.nodes)
        self.control_plane = next(n for n in self.nodes if n.group == "control_plane")
        self.replace_kube_proxy = replace_kube_proxy
        self.provision = provision or self._switch
        self.connect = connect
        self.progress = progress
        self.manifest_cache = manifest_cache   # None: the project's .cache/manifests
        # whether planning may download a pinned file not yet in the cache (tests: no)
        self.fetch_to_plan = fetch_to_plan
        self.shells: dict[str, NodeShell] = {}
        self.api: KubectlApi | None = None
        self.state: dict[str, Any] = {}

    # ------------------------------------------------------------ bring up / down

    def _switch(self, choice: operations.CniChoice, directory: Path) -> Path:
        """node_reset -> kubeadm init/join -> the plugin's role -> collect."""
        operation = operations.prepare("switch", self.inventory, self.profile, directory,
                                       choice)
        operations.run(operation, quiet=self.progress is not None and self.progress.quiet,
                       display=self.progress.display if self.progress is not None else None)
        return operation.directory

    def _choice(self, cni: str, mode: str, policy: bool) -> operations.CniChoice:
        from cnilab.cni.registry import can_replace_kube_proxy

        # --replace-kube-proxy asks it of every plugin that can; the others keep kube-proxy
        return operations.CniChoice(cni, mode, policy, self.replace_kube_proxy
                                    and can_replace_kube_proxy(cni))

    def unavailable(self, mode: ModeRef) -> str | None:
        """A mode cnilab cannot deploy with this profile, found before any node is
        touched: no role or pinned file, or a patch the plugin refuses (rendered here
        exactly as the deploy will render it). A file that cannot be fetched now is
        not a refusal: the deploy fetches it again and says why it cannot."""
        from cnilab import paths
        from cnilab.cni.base import ClusterNetwork, ModeOptions
        from cnilab.manifests.lock import cached_path
        from cnilab.manifests.render import release, render
        from cnilab.network import POD_CIDR

        if not mode.offload:
            return ("switching a node NIC's tunnel offload off is not implemented for "
                    "clusters (the netns lab does it, cnilab/lab/offload.py)")
        choice = self._choice(mode.cni, mode.mode, mode.policy)
        try:
            operations.check_cni(choice)
            _, url = release(mode.cni, self.profile)
            cache = self.manifest_cache or paths.project_root() / ".cache" / "manifests"
            if not self.fetch_to_plan and not cached_path(url, cache).is_file():
                return None
            # the deploy reads the node's MTU; planning checks the patch with a standard
            # one (what may be refused is the absence of an MTU, not its value)
            render(mode.cni, mode.mode, self.profile,
                   ClusterNetwork(POD_CIDR, tuple(n.node_ip for n in self.nodes),
                                  node_mtu=PLANNING_NODE_MTU),
                   cache_dir=cache,
                   options=ModeOptions(mode.policy, choice.replace_kube_proxy))
        except InputError as exc:
            return str(exc)
        except (OSError, CnilabError):
            return None
        return None

    def up(self, mode: ModeRef, *, workdir: Path) -> None:
        choice = self._choice(mode.cni, mode.mode, mode.policy)
        workdir.mkdir(parents=True, exist_ok=True)
        record = self.provision(choice, workdir)
        self.state = {"cni": choice.extravars(), "switch_record": str(record)}
        try:
            self._open()
            self._record_system_images()
            self._bench_pods()
            self._readiness_gate()
            self._idle_nodes()
        except BaseException:
            self.down()   # no benchmark pods or connections left behind a failed mode
            raise

    def _open(self) -> None:
        for node in {self.control_plane.name: self.control_plane, self.node_a.name: self.node_a,
                     self.node_b.name: self.node_b}.values():
            if node.name not in self.shells:
                self.shells[node.name] = self.connect(node)
        shell = self.shells[self.control_plane.name]
        self.api = KubectlApi(run=shell.run, start=shell.start, kubeconfig=ADMIN_KUBECONFIG)

    def _api(self) -> KubectlApi:
        if self.api is None:
            raise CnilabError("the cluster target is not up")
        return self.api

    def _node_of(self, pod: BenchPod) -> Node:
        return self.node_a if pod.side == "a" else self.node_b

    def _image(self, node: Node) -> dict[str, Any]:
        done = self.shells[node.name].run(["cat", IMAGE_RECORD], 20.0)
        try:
            record = json.loads(done.stdout)
            return {"reference": str(record["reference"]), "digest": str(record["digest"]),
                    "tag": str(record.get("tag", ""))}
        except (ValueError, KeyError, TypeError):
            raise CnilabError(f"{node.name}: no benchmark image record at {IMAGE_RECORD} "
                              "(roles/bench_image runs in `cnilab cluster up`)") from None

    def _record_system_images(self) -> None:
        """The image digests the kubelets actually run for the plugin, kube-proxy and
        CoreDNS (pods of kube-system): manifests pin tags, this records what they
        resolved to, next to the results."""
        pods = self._api().get("pods", "kube-system").get("items", [])
        running: dict[str, set[str]] = {}
        for pod in pods:
            for status in (pod.get("status", {}).get("containerStatuses") or []) + \
                    (pod.get("status", {}).get("initContainerStatuses") or []):
                if status.get("image") and status.get("imageID"):
                    running.setdefault(status["image"], set()).add(status["imageID"])
        self.state["system_images"] = {image: sorted(ids) for image, ids in
                                       sorted(running.items())}

    def _bench_pods(self) -> None:
        api = self._api()
        images = {n.name: self._image(n) for n in (self.node_a, self.node_b)}
        api.delete("namespace", NAMESPACE, name=NAMESPACE)
        documents = [bench_namespace()]
        for pod in PODS:
            node = self._node_of(pod)
            documents.append(bench_pod(pod.name, node.name, images[node.name]["reference"],
                                       host_network=pod.host_network, role=pod.role))
        documents.append(bench_service(SERVICE, "srv-b"))
        api.apply(documents)
        pods = self._wait_ready([p.name for p in PODS])
        service = api.get("service", NAMESPACE, name=SERVICE)
        cluster_ip = service.get("spec", {}).get("clusterIP", "")
        if not cluster_ip:
            raise CnilabError(f"Service {SERVICE} has no ClusterIP")
        self.state.update(nodes={"a": self.node_a.name, "b": self.node_b.name},
                          images=images, pods=pods, service_ip=cluster_ip)

    def _wait_ready(self, names: list[str]) -> dict[str, dict[str, str]]:
        api = self._api()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            listing = api.get("pods", NAMESPACE).get("items", [])
            found = {p["metadata"]["name"]: p for p in listing}
            ready = {n: p for n, p in found.items() if condition(p, "Ready") == "True"}
            if all(n in ready for n in names):
                return {n: {"ip": ready[n]["status"].get("podIP", ""),
                            "node": ready[n]["spec"].get("nodeName", ""),
                            "image_id": (ready[n]["status"].get("containerStatuses") or [{}])[0]
                            .get("imageID", "")} for n in names}
            if time.monotonic() > deadline:
                waiting = [f"{n} ({_why_not_ready(found.get(n))})" for n in names
                           if n not in ready]
                raise CnilabError(f"benchmark pods not Ready after {READY_TIMEOUT_S:g} s: "
                                  + ", ".join(waiting))
            time.sleep(1.0)

    def _readiness_gate(self) -> None:
        """Pod to pod within node A and from A to B, three echoes each, must answer.

        ``-A`` (busybox and iputils alike) sends the next echo as soon as a reply comes:
        a working network passes in milliseconds instead of two 1-s intervals per pair;
        a silent one still waits the intervals and ``-W``."""
        api = self._api()
        pods = self.state["pods"]
        for target in ("srv-a", "srv-b"):
            address = pods[target]["ip"]
            done = api.exec(NAMESPACE, "cli-a", [*GATE_PING, address], 30.0)
            if done.returncode != 0:
                where = "on the same node" if target == "srv-a" else "across nodes"
                raise CnilabError(
                    f"readiness gate: pod cli-a on {self.node_a.name} gets no reply from "
                    f"{target} ({address}) {where}; the pod network is not carrying traffic, "
                    f"nothing is measured: {(done.stdout + done.stderr).strip()[-300:]}")
        self.state["readiness_gate"] = "ping cli-a -> srv-a and cli-a -> srv-b answered"

    def _idle_nodes(self) -> None:
        """Both benchmark nodes watched while nothing is measured, right after the mode
        comes up: the node's busy share (/proc/stat) and its CNI agents' share (the
        kubelet's usageNanoCores) are recorded with the mode; the agents' idle CPU is part
        of what a plugin costs. A node busy beyond IDLE_LIMIT with something else is
        refused: that load would be charged to every measurement of the mode."""
        from cnilab.bench import cpu
        from cnilab.bench.parsers import kubelet

        nodes = [self.node_a.name, self.node_b.name]
        before = {n: self._read(n, "/proc/stat") for n in nodes}
        time.sleep(IDLE_WINDOW_S)
        after = {n: self._read(n, "/proc/stat") for n in nodes}
        found = self.agent_memory()
        agents = kubelet.agent_cpu_cores(found["agents"], found["summaries"])
        record: dict[str, Any] = {}
        for node in nodes:
            start, end = (cpu.parse_stat(text, f"{node}:/proc/stat").jiffies
                          for text in (before[node], after[node]))
            total = sum(end.values()) - sum(start.values())
            idle = (end["idle"] + end["iowait"]) - (start["idle"] + start["iowait"])
            cores = sum(1 for line in after[node].splitlines()
                        if line.startswith("cpu") and line[3:4].isdigit()) or 1
            busy = 1 - idle / total if total > 0 else 0.0
            share = agents.get(node, 0.0) / cores
            record[node] = {"window_s": IDLE_WINDOW_S, "cores": cores,
                            "node_busy_percent": round(100 * busy, 2),
                            "agents_percent": round(100 * share, 2)}
            if busy - share > IDLE_LIMIT:
                raise CnilabError(
                    f"node {node} is {100 * busy:.1f} % busy with nothing measured (the "
                    f"CNI agents {100 * share:.1f} % of it; limit {100 * IDLE_LIMIT:.0f} % "
                    "besides them): whatever holds the CPU would be charged to every "
                    "measurement of this mode")
        self.state["idle_cpu"] = record

    def verify_pod_network(self) -> dict[str, Any]:
        """The readiness gate alone, on whatever plugin is installed (after ``cnilab
        deploy``/``switch``): the benchmark pods go up, ping, and are removed again.
        Returns what was seen (pods, addresses, images); raises when a ping fails."""
        try:
            self._open()
            self._bench_pods()
            self._readiness_gate()
            return dict(self.state)
        finally:
            self.down()

    def down(self, *, workdir: Path | None = None) -> None:
        """Remove the benchmark namespace; the plugin stays until the next switch resets
        the nodes (a reset here would only repeat that one)."""
        if self.api is not None:
            with contextlib.suppress(KubectlError):
                self.api.delete("namespace", NAMESPACE, name=NAMESPACE)
        for shell in self.shells.values():
            shell.close()
        self.shells, self.api = {}, None

    # ------------------------------------------------------------ measurement

    def _endpoint(self, pod: str) -> Endpoint:
        info = self.state["pods"][pod]
        spec = next(p for p in PODS if p.name == pod)
        return Endpoint(pod, info["node"], info["ip"], "host" if spec.host_network else "pod",
                        locator=pod)

    def endpoints(self, placement: str) -> tuple[Endpoint, Endpoint]:
        e = self._endpoint
        if placement == "intra-host":
            return e("cli-a"), e("srv-a")
        if placement == "inter-host":
            return e("cli-a"), e("srv-b")
        if placement == "service":
            backend = e("srv-b")
            return e("cli-a"), Endpoint(f"svc/{SERVICE}->srv-b", backend.host,
                                        self.state["service_ip"], "service", "srv-b",
                                        bind_address=backend.address)
        if placement in ("underlay", "host-network"):
            return e("host-a"), e("host-b")
        raise InputError(f"the cluster target has no placement '{placement}'")

    def background_endpoints(self, placement: str) -> tuple[Endpoint, Endpoint]:
        if placement in ("underlay", "host-network"):
            return self.endpoints(placement)
        if placement == "intra-host":
            return self._endpoint("bgc-a"), self._endpoint("bgs-a")
        return self._endpoint("bgc-a"), self._endpoint("bgs-b")

    def set_path_rules(self, count: int, shape: str) -> int:
        """The lab's non-matching rules (or ipset), on the FORWARD path of both nodes."""
        loaded, steps = rule_steps(count, shape)
        for node in (self.node_a.name, self.node_b.name):
            for argv, stdin in steps:
                done = self.shells[node].run(argv, 120.0, stdin)
                if done.returncode != 0:
                    what = "removing the earlier rules" if argv[0] == "sh" else argv[0]
                    raise CnilabError(f"{node}: {what} failed: "
                                      f"{(done.stderr or done.stdout).strip()[-300:]}")
        return loaded

    def start_pods(self, count: int, attempt: int) -> dict[str, Any]:
        node = self.node_a
        cp_offset, cp_error = self.shells[self.control_plane.name].clock_offset()
        node_offset, node_error = self.shells[node.name].clock_offset()
        clocks = kube_startup.Clocks(cp_offset, node_offset, cp_error + node_error)
        return kube_startup.measure(self._api(), node.name, self.state["images"][node.name]
                                    ["reference"], self.state["pods"]["srv-a"]["ip"], count,
                                    attempt, clocks)

    def agent_memory(self) -> dict[str, Any]:
        """The plugin's agent pods (the catalog's DaemonSet selector, in any namespace:
        newer Flannel runs in kube-flannel) and the kubelet Summary API of each node
        they run on, read through the API server's node proxy."""
        from cnilab.modes import plugin_facts

        selector = plugin_facts()[self.state["cni"]["cnilab_cni"]].daemonset_selector
        api = self._api()
        listing = api.get_all_namespaces("pods", selector)
        agents = [{"namespace": str(p["metadata"]["namespace"]),
                   "name": str(p["metadata"]["name"]),
                   "node": str(p.get("spec", {}).get("nodeName", ""))}
                  for p in listing.get("items", [])]
        summaries = {node: api.raw(f"/api/v1/nodes/{node}/proxy/stats/summary")
                     for node in sorted({a["node"] for a in agents if a["node"]})}
        return {"selector": selector, "agents": agents, "summaries": summaries}

    def _read(self, node: str, path: str) -> str:
        try:
            return self.shells[node].read_file(path)
        except OSError as exc:
            raise ExecutorError(str(exc)) from None

    def executor(self) -> Executor:
        return KubernetesExecutor(self._api(), node_read=self._read)

    def describe(self) -> dict[str, Any]:
        return {"inventory": str(self.inventory.resolve()), "profile": self.profile,
                "nodes": {"a": self.node_a.name, "b": self.node_b.name,
                          "control_plane": self.control_plane.name},
                "replace_kube_proxy": self.replace_kube_proxy}

    def snapshot(self) -> dict[str, Any]:
        return {"target": "cluster", "inventory": str(self.inventory), "profile": self.profile,
                **self.state}

    def fidelity(self) -> list[str]:
        images = self.state.get("images", {})
        digests = ", ".join(f"{n}: {i['digest']}" for n, i in sorted(images.items()))
        return [
            f"Real kubeadm cluster ({self.inventory.name}, pin profile {self.profile}); the "
            "plugin was installed by its role from the pinned, sha256-verified upstream file "
            "and its mode checked on every node before measuring (record: "
            f"{self.state.get('switch_record', '?')}).",
            f"Benchmark pods run the image built on each node from the pinned tools ({digests}).",
            "underlay and host-network are both hostNetwork pods on the two nodes (no CNI on "
            "the path). CPU cost is per node from /proc/stat read over SSH; perf is not run "
            "on the nodes.",
        ]


def _why_not_ready(pod: dict[str, Any] | None) -> str:
    if pod is None:
        return "not created"
    state = waiting(pod)
    if state:
        return f"{state.get('reason', 'waiting')}: {state.get('message', '')}".strip(": ")
    return str(pod.get("status", {}).get("phase", "unknown"))
