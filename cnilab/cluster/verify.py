"""Is the cluster what the inventory says? Checks over ``kubectl get ... -o json``.

The verify_cluster role fetches the Node and Pod lists on the control plane and
passes them here (the ``cnilab.cluster.cluster_problems`` filter): every
inventory host must be a Ready node whose InternalIP is its ``node_ip`` (the
Vagrant NAT address 10.0.2.15 as InternalIP is the classic silent failure), no
unknown node may be present, and every kube-system pod must be Running with its
containers ready. An empty list means the cluster is fine.
"""

from __future__ import annotations

from typing import Any


def condition(obj: dict[str, Any], kind: str) -> str | None:
    """The status ("True", "False", ...) of a Node's or Pod's condition ``kind``."""
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def waiting(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The first container of a pod that is waiting: its ``state.waiting`` (reason,
    message), or None."""
    for status in pod.get("status", {}).get("containerStatuses", []) or []:
        state = (status.get("state") or {}).get("waiting")
        if state:
            return dict(state)
    return None


def node_problems(nodes: dict[str, Any], expected: dict[str, str]) -> list[str]:
    """``nodes``: a NodeList; ``expected``: node name -> node_ip from the inventory."""
    problems: list[str] = []
    seen: set[str] = set()
    for node in nodes.get("items", []):
        name = str(node["metadata"]["name"])
        seen.add(name)
        if name not in expected:
            problems.append(f"node {name} is in the cluster but not in the inventory")
            continue
        if condition(node, "Ready") != "True":
            problems.append(f"node {name} is not Ready")
        internal = [a["address"] for a in node.get("status", {}).get("addresses", [])
                    if a.get("type") == "InternalIP"]
        if internal != [expected[name]]:
            problems.append(f"node {name}: InternalIP {', '.join(internal) or 'none'}, "
                            f"inventory node_ip {expected[name]}")
    problems += [f"node {name} from the inventory has not joined"
                 for name in sorted(set(expected) - seen)]
    return problems


def pod_problems(pods: dict[str, Any]) -> list[str]:
    """``pods``: a PodList (kube-system): every pod Running with all containers ready."""
    problems: list[str] = []
    for pod in pods.get("items", []):
        name = f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"
        phase = pod.get("status", {}).get("phase")
        if phase != "Running":
            problems.append(f"pod {name} is {phase or 'without a phase'}")
            continue
        statuses = pod.get("status", {}).get("containerStatuses", [])
        not_ready = [s["name"] for s in statuses if not s.get("ready")]
        if not_ready:
            problems.append(f"pod {name}: containers not ready: {', '.join(not_ready)}")
    return problems


def daemonset_problems(daemonsets: dict[str, Any]) -> list[str]:
    """``kubectl get daemonsets -o json`` -> one line per DaemonSet not ready on every
    node it is scheduled to (or a line when none matched at all)."""
    items = daemonsets.get("items") or []
    if not items:
        return ["no DaemonSet matched"]
    problems = []
    for item in items:
        status = item.get("status") or {}
        desired = int(status.get("desiredNumberScheduled") or 0)
        ready = int(status.get("numberReady") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        where = f"{item['metadata'].get('namespace', '')}/{item['metadata']['name']}"
        if desired == 0:
            problems.append(f"{where}: scheduled on no node")
        elif ready < desired or updated < desired:
            problems.append(f"{where}: {ready}/{desired} ready, {updated} updated")
    return problems


def node_peers(nodes: dict[str, Any], node_ips: dict[str, str], me: str) -> dict[str, list[str]]:
    """``kubectl get nodes -o json`` + the inventory's node_ip per host -> every other
    node's [node_ip, podCIDR] (what a mode check compares a node's routes with)."""
    cidrs = {item["metadata"]["name"]: (item.get("spec") or {}).get("podCIDR", "")
             for item in nodes.get("items") or []}
    return {name: [ip, cidrs.get(name, "")] for name, ip in sorted(node_ips.items())
            if name != me}
