"""FAKE Kubernetes control plane and `kubectl`, for the real-cluster roles run by real
Ansible over real SSH against emulated nodes (tests/sshnodes.py).

No API server, kubelet, kubeadm or container runtime can run on the build machine. This
fake stands in for exactly those: the roles' `kubectl` on the control-plane node is a
shim that hands its command line (and any `-f` file) to a FakeApi in the test process,
over a Unix socket. It answers only the commands the roles use and refuses any other
with an error, so a role that starts using another command fails here first.

It must be as hard as a real cluster. What it models, and where that is stated:

- A node's Ready condition comes from its kubelet, which asks the runtime whether the
  network is ready; containerd answers not ready until its CNI loader finds a
  configuration in /etc/cni/net.d (libcni ConfFiles: *.conf, *.conflist, *.json). So a
  node is ``Ready=False``, reason ``KubeletNotReady``, message "container runtime
  network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network
  plugin returns error: cni plugin not initialized" (kubelet setNetworkState;
  containerd internal/cri/server/status.go; go-cni ErrCNINotInitialized) until such a
  file exists in *that node's* /etc/cni/net.d, which the fake reads on the node.
  A node whose kubelet stopped is ``Unknown``/``NodeStatusUnknown`` (node lifecycle
  controller).
- A NotReady node carries ``node.kubernetes.io/not-ready:NoSchedule`` (taint-nodes-by-
  condition); a control-plane node ``node-role.kubernetes.io/control-plane:NoSchedule``
  (kubeadm >= 1.24). Labels are the kubelet's (kubernetes.io/{hostname,os,arch} and the
  beta.kubernetes.io/{os,arch} it still sets: pkg/kubelet/kubelet_node_status.go) and
  kubeadm's node-role label.
- podCIDRs are allocated in registration order, /24s of the cluster CIDR
  (kube-controller-manager --allocate-node-cidrs, --node-cidr-mask-size 24).
- kube-system: kubeadm's static pods per control-plane node (``<component>-<node>``,
  labels component and tier=control-plane, host network: they run without a CNI);
  kube-proxy on every node (host network, tolerates every taint); CoreDNS (2 replicas,
  k8s-app=kube-dns) Pending/Unschedulable while no node is schedulable for it (kubeadm:
  "it will not be scheduled until CNI is installed").
- An applied DaemonSet is scheduled on the nodes whose labels its nodeSelector and
  required node affinity match and whose NoSchedule/NoExecute taints it tolerates, with
  the tolerations the DaemonSet controller adds itself
  (pkg/controller/daemon/util AddOrUpdateDaemonPodTolerations); its counts follow
  (desiredNumberScheduled, numberReady, updatedNumberScheduled, numberAvailable).
  A DaemonSet for another architecture selects no node.
- A DaemonSet that mounts the host's /etc/cni/net.d stands for a CNI agent: on each node
  it runs on, its install step writes a configuration there (the fake's file says it is
  one), and that node turns Ready. Deleting the DaemonSet leaves the file, as deleting a
  real plugin does (node_reset's business).

Objects are validated strictly against the schemas of the cluster's Kubernetes minor
where offline schemas exist (kubernetes-validate: 1.25 and later); older minors (the
paper-2020 stack's 1.18) are accepted as they are.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shlex
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CNI_EXTENSIONS = (".conf", ".conflist", ".json")
NOT_READY_MESSAGE = ("container runtime network not ready: NetworkReady=false "
                     "reason:NetworkPluginNotReady message:Network plugin returns error: "
                     "cni plugin not initialized")
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
# what the DaemonSet controller lets every daemon pod tolerate (and, for host-network
# pods, network-unavailable)
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
     "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable",
                           "operator": "Exists", "effect": "NoSchedule"}
# kubeadm's CoreDNS Deployment tolerations
COREDNS_TOLERATIONS = [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                       {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager",
                            "kube-scheduler")


CNI_DIR = "/etc/cni/net.d"
_MARK = "--cnilab-fake-file--"

# runs a shell command on the node (in its namespaces, as its kubelet would see files)
NodeShell = Callable[[str], str]


@dataclass
class FakeNode:
    name: str
    ip: str
    control_plane: bool
    shell: NodeShell
    pod_cidr: str
    arch: str = "amd64"
    kubelet_posting: bool = True

    def cni_configured(self) -> bool:
        """libcni's view: a parsable configuration file in /etc/cni/net.d."""
        patterns = " ".join(f"{CNI_DIR}/*{ext}" for ext in CNI_EXTENSIONS)
        listing = self.shell(f'for f in {patterns}; do [ -f "$f" ] && '
                             f'echo {_MARK} && cat "$f"; done; true')
        for text in listing.split(_MARK + "\n")[1:]:
            try:
                json.loads(text)
                return True
            except ValueError:
                continue
        return False

    def write_cni_config(self, name: str, text: str) -> None:
        self.shell(f"mkdir -p {CNI_DIR} && printf %s {shlex.quote(text)} > "
                   f"{CNI_DIR}/{shlex.quote(name)}")


def _label_match(labels: dict[str, str], term: dict[str, Any]) -> bool:
    """A nodeSelectorTerm's matchExpressions against node labels (In, NotIn, Exists,
    DoesNotExist, Gt, Lt)."""
    for expr in term.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        value = labels.get(key)
        if op == "In" and value not in values:
            return False
        if op == "NotIn" and value in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op in ("Gt", "Lt"):
            if value is None:
                return False
            number, bound = int(value), int(values[0])
            if (op == "Gt" and not number > bound) or (op == "Lt" and not number < bound):
                return False
    return True


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol["key"] == taint["key"]:
                return True
        elif tol.get("key") == taint["key"] and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


class FakeApi:
    """FAKE: the cluster's state and the kubectl commands the roles send."""

    def __init__(self, kubernetes: str = "1.36.4", cluster_cidr: str = "10.244.0.0/16") -> None:
        self.kubernetes = kubernetes
        self.subnets = ipaddress.ip_network(cluster_cidr).subnets(new_prefix=24)
        self.nodes: dict[str, FakeNode] = {}
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    # --- what kubeadm init/join and the kubelet do --------------------------------------

    def register(self, name: str, ip: str, shell: NodeShell, control_plane: bool = False,
                 arch: str = "amd64") -> FakeNode:
        node = FakeNode(name, ip, control_plane, shell, str(next(self.subnets)), arch)
        self.nodes[name] = node
        return node

    # --- objects as the API server returns them ----------------------------------------

    def _ready(self, node: FakeNode) -> dict[str, Any]:
        if not node.kubelet_posting:
            return {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status."}
        if node.cni_configured():
            return {"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status"}
        return {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                "message": NOT_READY_MESSAGE}

    def _taints(self, node: FakeNode) -> list[dict[str, Any]]:
        taints = [dict(CONTROL_PLANE_TAINT)] if node.control_plane else []
        status = self._ready(node)["status"]
        if status == "False":
            taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
        elif status == "Unknown":
            taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})
        return taints

    def _labels(self, node: FakeNode) -> dict[str, str]:
        labels = {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": node.arch, "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": node.arch}
        if node.control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
            labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        return labels

    def node_object(self, node: FakeNode) -> dict[str, Any]:
        pressure = [{"type": t, "status": "False"}
                    for t in ("MemoryPressure", "DiskPressure", "PIDPressure")]
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": self._labels(node)},
                "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr],
                         "taints": self._taints(node)},
                "status": {"conditions": [*pressure, self._ready(node)],
                           "addresses": [{"type": "InternalIP", "address": node.ip},
                                         {"type": "Hostname", "address": node.name}],
                           "nodeInfo": {"architecture": node.arch,
                                        "operatingSystem": "linux",
                                        "kubeletVersion": f"v{self.kubernetes}"}}}

    def _schedulable(self, node: FakeNode, pod_spec: dict[str, Any],
                     extra: list[dict[str, Any]]) -> bool:
        labels = self._labels(node)
        selector = pod_spec.get("nodeSelector") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            return False
        required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
        terms = required.get("nodeSelectorTerms")
        if terms and not any(_label_match(labels, term) for term in terms):
            return False
        tolerations = list(pod_spec.get("tolerations") or []) + extra
        return all(_tolerates(tolerations, taint) for taint in self._taints(node)
                   if taint["effect"] in ("NoSchedule", "NoExecute"))

    def _daemonset_nodes(self, ds: dict[str, Any]) -> list[FakeNode]:
        spec = ds["spec"]["template"]["spec"]
        extra = DAEMON_TOLERATIONS + ([HOST_NETWORK_TOLERATION]
                                      if spec.get("hostNetwork") else [])
        return [n for n in self.nodes.values() if n.kubelet_posting
                and self._schedulable(n, spec, extra)]

    def _daemonset_with_status(self, ds: dict[str, Any]) -> dict[str, Any]:
        count = len(self._daemonset_nodes(ds))
        return {**ds, "status": {"currentNumberScheduled": count,
                                 "desiredNumberScheduled": count, "numberReady": count,
                                 "updatedNumberScheduled": count, "numberAvailable": count,
                                 "numberMisscheduled": 0}}

    @staticmethod
    def _running(name: str, namespace: str, node: str, labels: dict[str, str],
                 containers: list[str], host_network: bool) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {"nodeName": node, "hostNetwork": host_network},
                "status": {"phase": "Running",
                           "conditions": [{"type": "Ready", "status": "True"}],
                           "containerStatuses": [{"name": c, "ready": True,
                                                  "state": {"running": {}}}
                                                 for c in containers]}}

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        pods = []
        if namespace == "kube-system":
            for node in self.nodes.values():
                if node.control_plane:
                    pods += [self._running(f"{c}-{node.name.lower()}", namespace, node.name,
                                           {"component": c, "tier": "control-plane"}, [c],
                                           True) for c in CONTROL_PLANE_COMPONENTS]
                suffix = hashlib.sha256(node.name.encode()).hexdigest()[:5]
                pods.append(self._running(f"kube-proxy-{suffix}", namespace, node.name,
                                          {"k8s-app": "kube-proxy"}, ["kube-proxy"], True))
            spec = {"tolerations": COREDNS_TOLERATIONS}
            hosts = [n for n in self.nodes.values() if self._schedulable(n, spec, [])]
            for index in range(2):
                name = f"coredns-7c65d6cfc9-{'ab'[index]}{index}xyz"
                if hosts:
                    pods.append(self._running(name, namespace, hosts[index % len(hosts)].name,
                                              {"k8s-app": "kube-dns"}, ["coredns"], False))
                else:
                    taints = sorted({t["key"] for n in self.nodes.values()
                                     for t in self._taints(n)})
                    pods.append({"apiVersion": "v1", "kind": "Pod",
                                 "metadata": {"name": name, "namespace": namespace,
                                              "labels": {"k8s-app": "kube-dns"}},
                                 "spec": {}, "status": {"phase": "Pending", "conditions": [{
                                     "type": "PodScheduled", "status": "False",
                                     "reason": "Unschedulable",
                                     "message": f"0/{len(self.nodes)} nodes are available: "
                                                f"untolerated taints {', '.join(taints)}"}]}})
        for (kind, ns, name), ds in self.objects.items():
            if kind != "DaemonSet" or ns != namespace:
                continue
            containers = [c["name"] for c in ds["spec"]["template"]["spec"]["containers"]]
            labels = dict(ds["spec"]["template"]["metadata"].get("labels") or {})
            for node in self._daemonset_nodes(ds):
                suffix = hashlib.sha256(f"{name}/{node.name}".encode()).hexdigest()[:5]
                pods.append(self._running(f"{name}-{suffix}", ns, node.name, labels,
                                          containers, bool(ds["spec"]["template"]["spec"]
                                                           .get("hostNetwork"))))
        return pods

    # --- writes ----------------------------------------------------------------------

    def _validate(self, item: dict[str, Any]) -> None:
        major_minor = tuple(int(p) for p in self.kubernetes.split(".")[:2])
        if major_minor < (1, 25):
            return
        import kubernetes_validate

        kubernetes_validate.validate(item, ".".join(map(str, major_minor)) + ".0",
                                     strict=True)

    @staticmethod
    def _documents(text: str) -> list[dict[str, Any]]:
        import yaml

        out: list[dict[str, Any]] = []
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            out += [d for d in doc.get("items", [])] if doc.get("kind") == "List" else [doc]
        return out

    def _agent_installs(self, ds: dict[str, Any]) -> None:
        """A DaemonSet mounting the host's /etc/cni/net.d is a CNI agent: its install
        step writes the node's CNI configuration on every node it runs on."""
        volumes = ds["spec"]["template"]["spec"].get("volumes") or []
        if not any((v.get("hostPath") or {}).get("path", "").rstrip("/") == "/etc/cni/net.d"
                   for v in volumes):
            return
        name = ds["metadata"]["name"]
        for node in self._daemonset_nodes(ds):
            if not node.cni_configured():
                node.write_cni_config(f"10-{name}.conflist", json.dumps({
                    "cniVersion": "0.3.1", "name": name,
                    "plugins": [{"type": "cnilab-fake-agent",
                                 "_comment": "FAKE: written by tests/fake_kube.py"}]}))

    def apply(self, text: str) -> str:
        lines = []
        for item in self._documents(text):
            self._validate(item)
            kind, meta = item["kind"], item["metadata"]
            key = (kind, meta.get("namespace", "default" if kind not in (
                "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                "PodSecurityPolicy", "StorageClass") else ""), meta["name"])
            verb = "configured" if key in self.objects else "created"
            self.objects[key] = item
            group = item["apiVersion"].split("/")[0] if "/" in item["apiVersion"] else ""
            lines.append(f"{kind.lower()}{'.' + group if group else ''}/{meta['name']} {verb}")
        return "\n".join(lines) + "\n"

    def delete(self, text: str) -> str:
        lines = []
        for item in self._documents(text):
            for key in [k for k in self.objects if k[0] == item["kind"]
                        and k[2] == item["metadata"]["name"]]:
                del self.objects[key]
                lines.append(f"{item['kind'].lower()} \"{key[2]}\" deleted")
        return "\n".join(lines) + ("\n" if lines else "")

    # --- kubectl -----------------------------------------------------------------------

    def kubectl(self, argv: list[str], files: dict[str, str]) -> tuple[int, str, str]:
        """(rc, stdout, stderr) of ``kubectl ARGV`` against this cluster."""
        with self.lock:
            self.calls.append(argv)
            # the DaemonSet controller and the kubelets act between requests
            for (kind, _, _), item in list(self.objects.items()):
                if kind == "DaemonSet":
                    self._agent_installs(item)
            try:
                return self._kubectl(argv, files)
            except Exception as exc:       # the error is kubectl's stderr
                return 1, "", f"FAKE API: {type(exc).__name__}: {exc}\n"

    def _kubectl(self, argv: list[str], files: dict[str, str]) -> tuple[int, str, str]:
        args = list(argv)
        if args[:1] == ["--kubeconfig"]:
            args = args[2:]
        options: dict[str, str] = {}
        words: list[str] = []
        flags = {"-o": "output", "--output": "output", "-n": "namespace",
                 "--namespace": "namespace", "-l": "selector", "--selector": "selector",
                 "-f": "file", "--filename": "file"}
        switches = {"--all-namespaces": "all", "--ignore-not-found": "ignore",
                    "--wait": "wait"}
        it = iter(args)
        for word in it:
            if word in flags:
                options[flags[word]] = next(it)
            elif word in switches:
                options[switches[word]] = "true"
            elif word.startswith("--raw="):
                options["raw"] = word.split("=", 1)[1]
            elif word.startswith("-"):
                return 1, "", f"FAKE API: flag {word} is not modelled\n"
            else:
                words.append(word)
        verb = words[0] if words else ""
        if verb == "get" and options.get("raw") == "/readyz":
            return 0, "ok", ""
        if verb == "get" and len(words) == 2 and options.get("output") == "json":
            items: list[dict[str, Any]] = []
            for resource in words[1].split(","):
                items += self._list(resource, options)
            if "," not in words[1] and words[1] in ("nodes", "pods", "daemonsets"):
                kind = {"nodes": "NodeList", "pods": "PodList",
                        "daemonsets": "DaemonSetList"}[words[1]]
                return 0, json.dumps({"apiVersion": "v1", "kind": kind, "items": items}), ""
            return 0, json.dumps({"apiVersion": "v1", "kind": "List", "items": items}), ""
        if verb in ("apply", "delete") and "file" in options:
            text = files[options["file"]]
            return 0, (self.apply(text) if verb == "apply" else self.delete(text)), ""
        return 1, "", f"FAKE API: kubectl {' '.join(argv)} is not modelled\n"

    def _list(self, resource: str, options: dict[str, str]) -> list[dict[str, Any]]:
        if resource == "nodes":
            return [self.node_object(n) for n in self.nodes.values()]
        if resource == "pods":
            return self.pods(options.get("namespace", "default"))
        if resource == "daemonsets":
            wanted = dict(p.split("=", 1) for p in options.get("selector", "").split(",") if p)
            found = []
            for (kind, ns, _), ds in self.objects.items():
                labels = ds["metadata"].get("labels") or {}
                if kind == "DaemonSet" and ("all" in options or
                                            ns == options.get("namespace", "default")) \
                        and all(labels.get(k) == v for k, v in wanted.items()):
                    found.append(self._daemonset_with_status(ds))
            return found
        raise ValueError(f"resource {resource} is not modelled")

    # --- the socket the node-side shim talks to ------------------------------------------

    def serve(self, path: Path) -> socketserver.UnixStreamServer:
        api = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = json.loads(self.rfile.readline())
                rc, out, err = api.kubectl(request["argv"], request.get("files", {}))
                self.wfile.write(json.dumps({"rc": rc, "stdout": out,
                                             "stderr": err}).encode() + b"\n")

        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


SHIM = """#!/bin/sh
# FAKE kubectl (cnilab tests): the command goes to tests/fake_kube.py's FakeApi
exec {python} {module} {socket} "$@"
"""


def shim_text(socket_path: Path) -> str:
    return SHIM.format(python=sys.executable, module=Path(__file__).resolve(),
                       socket=socket_path)


def _client(socket_path: str, argv: list[str]) -> int:
    """The node-side half: send argv (and the text of a `-f` file, read on the node)."""
    files = {}
    for flag in ("-f", "--filename"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            name = argv[argv.index(flag) + 1]
            files[name] = Path(name).read_text()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(socket_path)
        conn.sendall(json.dumps({"argv": argv, "files": files}).encode() + b"\n")
        reply = json.loads(conn.makefile("rb").readline())
    sys.stdout.write(reply["stdout"])
    sys.stderr.write(reply["stderr"])
    return int(reply["rc"])


if __name__ == "__main__":
    os.environ.pop("PYTHONPATH", None)
    sys.exit(_client(sys.argv[1], sys.argv[2:]))
