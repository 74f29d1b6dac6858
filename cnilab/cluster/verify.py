"""Is the cluster what the inventory says? Checks over ``kubectl get ... -o json``.

Two moments, because a kubeadm cluster without a CNI cannot be healthy yet: the kubelet
reports the node NotReady ("container runtime network not ready: NetworkReady=false
reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not
initialized") until a CNI configuration exists, the node keeps the
``node.kubernetes.io/not-ready:NoSchedule`` taint, and CoreDNS stays Pending (kubeadm:
"it will not be scheduled until CNI is installed").

- **registered** (end of ``cluster up``, before any CNI): every inventory host is a node
  whose InternalIP is its ``node_ip`` (the Vagrant NAT address 10.0.2.15 as InternalIP
  is the classic silent failure), no unknown node is present, every node's kubelet
  posts its status (Ready True or False; Unknown means the kubelet stopped posting),
  and the control plane's static pods (kubeadm labels ``tier=control-plane``) run.
- **networked** (after the CNI): every node Ready, CoreDNS running and ready, every
  kube-system pod running.

The verify_cluster role fetches the lists on the control plane and passes them here
through the ``cnilab.cluster.*_problems`` filters. An empty list means all is well.
"""

from __future__ import annotations

from typing import Any

from cnilab.kube_objects import waiting

# kubeadm's static pods (cmd/kubeadm/app/util/staticpod: labels component=<name>,
# tier=control-plane; the kubelet names a static pod <name>-<node name, lowercased>)
CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager",
                            "kube-scheduler")
# kubeadm's CoreDNS Deployment labels its pods k8s-app=kube-dns
COREDNS_LABEL = ("k8s-app", "kube-dns")


def _ready_condition(node: dict[str, Any]) -> dict[str, Any]:
    for cond in node.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return {}


def registration_problems(nodes: dict[str, Any], expected: dict[str, str]) -> list[str]:
    """Before the CNI: ``nodes`` (a NodeList) holds every inventory host (``expected``:
    node name -> node_ip), with its InternalIP, and each one's kubelet posts status."""
    problems: list[str] = []
    seen: set[str] = set()
    for node in nodes.get("items", []):
        name = str(node["metadata"]["name"])
        seen.add(name)
        if name not in expected:
            problems.append(f"node {name} is in the cluster but not in the inventory")
            continue
        ready = _ready_condition(node)
        if ready.get("status") not in ("True", "False"):
            problems.append(f"node {name}: its kubelet posts no status (Ready "
                            f"{ready.get('status', 'absent')}"
                            f"{': ' + ready['message'] if ready.get('message') else ''})")
        internal = [a["address"] for a in node.get("status", {}).get("addresses", [])
                    if a.get("type") == "InternalIP"]
        if internal != [expected[name]]:
            problems.append(f"node {name}: InternalIP {', '.join(internal) or 'none'}, "
                            f"inventory node_ip {expected[name]}")
    problems += [f"node {name} from the inventory has not joined"
                 for name in sorted(set(expected) - seen)]
    return problems


def readiness_problems(nodes: dict[str, Any]) -> list[str]:
    """After the CNI: every node Ready (the kubelet's reason and message when not)."""
    problems = []
    for node in nodes.get("items", []):
        ready = _ready_condition(node)
        if ready.get("status") != "True":
            why = ": ".join(str(ready[k]) for k in ("reason", "message") if ready.get(k))
            problems.append(f"node {node['metadata']['name']} is not Ready"
                            + (f" ({why})" if why else ""))
    return problems


def _pod_problem(pod: dict[str, Any]) -> str | None:
    name = f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"
    phase = pod.get("status", {}).get("phase")
    if phase != "Running":
        why = waiting(pod) or next(
            ({"reason": c.get("reason"), "message": c.get("message")}
             for c in pod.get("status", {}).get("conditions", []) or []
             if c.get("status") == "False" and c.get("reason")), None)
        text = ": ".join(str(v) for v in ((why or {}).get("reason"),
                                          (why or {}).get("message")) if v)
        return f"pod {name} is {phase or 'without a phase'}" + (f" ({text})" if text else "")
    statuses = pod.get("status", {}).get("containerStatuses", [])
    not_ready = [s["name"] for s in statuses if not s.get("ready")]
    if not_ready:
        return f"pod {name}: containers not ready: {', '.join(not_ready)}"
    return None


def pod_problems(pods: dict[str, Any]) -> list[str]:
    """``pods``: a PodList (kube-system): every pod Running with all containers ready."""
    return [p for p in (_pod_problem(pod) for pod in pods.get("items", [])) if p]


def _labelled(pod: dict[str, Any], key: str, value: str) -> bool:
    return (pod.get("metadata", {}).get("labels") or {}).get(key) == value


def control_plane_problems(pods: dict[str, Any], control_plane: list[str]) -> list[str]:
    """Before the CNI: the static pods of every control-plane node run (they use the
    host network, so they need no CNI)."""
    found = {(pod.get("metadata", {}).get("labels") or {}).get("component", ""):
             pod for pod in pods.get("items", []) if _labelled(pod, "tier", "control-plane")}
    by_name = {pod["metadata"]["name"]: pod for pod in found.values()}
    problems = []
    for node in control_plane:
        for component in CONTROL_PLANE_COMPONENTS:
            name = f"{component}-{node.lower()}"
            pod = by_name.get(name)
            if pod is None:
                problems.append(f"static pod kube-system/{name} is missing")
            else:
                problems += [p for p in [_pod_problem(pod)] if p]
    return problems


def coredns_problems(pods: dict[str, Any]) -> list[str]:
    """After the CNI: CoreDNS pods exist and run (they are the first pods on the pod
    network, so they show that the CNI serves pods)."""
    dns = [pod for pod in pods.get("items", []) if _labelled(pod, *COREDNS_LABEL)]
    if not dns:
        return ["no CoreDNS pod (label k8s-app=kube-dns) in kube-system"]
    return [p for p in (_pod_problem(pod) for pod in dns) if p]


PHASES = ("registered", "networked")


def cluster_problems(listing: dict[str, Any], phase: str, expected: dict[str, str],
                     control_plane: list[str]) -> list[str]:
    """``kubectl get nodes,pods --namespace kube-system -o json`` (one List of both)
    judged for ``phase``: "registered" (before any CNI) or "networked" (after it)."""
    if phase not in PHASES:
        raise ValueError(f"phase {phase!r}: one of {', '.join(PHASES)}")
    items = listing.get("items") or []
    nodes = {"items": [i for i in items if i.get("kind") == "Node"]}
    pods = {"items": [i for i in items if i.get("kind") == "Pod"]}
    problems = registration_problems(nodes, expected)
    if phase == "registered":
        return problems + control_plane_problems(pods, control_plane)
    found = problems + readiness_problems(nodes) + coredns_problems(pods) + pod_problems(pods)
    return list(dict.fromkeys(found))        # CoreDNS pods are kube-system pods too


def daemonset_problems(daemonsets: dict[str, Any], nodes: int) -> list[str]:
    """``kubectl get daemonsets -o json`` (a plugin's DaemonSets) and the number of nodes
    -> what keeps the plugin from running on every node. Judged by the nodes each
    DaemonSet selects: a plugin may ship one DaemonSet per architecture (flannel
    v0.12.0: five, by beta.kubernetes.io/arch), of which those for other architectures
    select no node; together they must schedule one pod per node, each ready and
    updated."""
    items = daemonsets.get("items") or []
    if not items:
        return ["no DaemonSet matched"]
    problems = []
    scheduled = 0
    for item in items:
        status = item.get("status") or {}
        desired = int(status.get("desiredNumberScheduled") or 0)
        ready = int(status.get("numberReady") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        scheduled += desired
        where = f"{item['metadata'].get('namespace', '')}/{item['metadata']['name']}"
        if ready < desired or updated < desired:
            problems.append(f"{where}: {ready}/{desired} ready, {updated} updated")
    if scheduled != nodes:
        names = ", ".join(i["metadata"]["name"] for i in items)
        problems.append(f"{names}: scheduled on {scheduled} of the {nodes} nodes")
    return problems


def node_peers(nodes: dict[str, Any], node_ips: dict[str, str], me: str) -> dict[str, list[str]]:
    """``kubectl get nodes -o json`` + the inventory's node_ip per host -> every other
    node's [node_ip, podCIDR] (what a mode check compares a node's routes with)."""
    cidrs = {item["metadata"]["name"]: (item.get("spec") or {}).get("podCIDR", "")
             for item in nodes.get("items") or []}
    return {name: [ip, cidrs.get(name, "")] for name, ip in sorted(node_ips.items())
            if name != me}
