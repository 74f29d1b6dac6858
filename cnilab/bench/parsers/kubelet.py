"""The kubelet's Summary API -> the memory of a CNI plugin's agent pods (claim M1).

Why the Summary API: the kubelet fills ``/api/v1/nodes/NODE/proxy/stats/summary``
(k8s.io/kubelet/pkg/apis/stats/v1alpha1) from the pods' cgroups, so it needs neither
metrics-server nor a cgroup layout of ours (cgroup v1 or v2, systemd or cgroupfs
driver). ``workingSetBytes`` is what the kubelet evicts and `kubectl top` reports:
usage minus inactive file pages. Per pod it is the pod-level ``memory`` when the kubelet
reports one, else the sum over the pod's containers (older kubelets report containers
only).

The raw file (``raw/*-agents.json``) holds the agent pods found and each node's
summary; the metrics are derived here, so ``cnilab verify`` can recompute them.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from cnilab.bench.parsers import ParseError

MIB = 1024 * 1024


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParseError(f"{what}: not a byte count: {str(value)[:40]}")
    return value


def pod_working_set(pod: dict[str, Any]) -> int | None:
    """A summary pod entry's working set in bytes (None: the kubelet reports none)."""
    name = str(pod.get("podRef", {}).get("name", "?"))
    memory = pod.get("memory")
    if isinstance(memory, dict) and "workingSetBytes" in memory:
        return _count(memory["workingSetBytes"], f"pod {name} workingSetBytes")
    found = [c["memory"]["workingSetBytes"] for c in pod.get("containers") or []
             if isinstance(c.get("memory"), dict) and "workingSetBytes" in c["memory"]]
    if not found:
        return None
    return sum(_count(v, f"pod {name} container workingSetBytes") for v in found)


def pod_cpu_cores(pod: dict[str, Any]) -> float | None:
    """A summary pod entry's recent CPU use in cores (``usageNanoCores``, the kubelet's
    rate over its last two samples), pod level or summed over containers."""
    cpu = pod.get("cpu")
    if isinstance(cpu, dict) and "usageNanoCores" in cpu:
        return _count(cpu["usageNanoCores"], "usageNanoCores") / 1e9
    found = [c["cpu"]["usageNanoCores"] for c in pod.get("containers") or []
             if isinstance(c.get("cpu"), dict) and "usageNanoCores" in c["cpu"]]
    if not found:
        return None
    return sum(_count(v, "container usageNanoCores") for v in found) / 1e9


def agent_cpu_cores(agents: list[dict[str, str]],
                    summaries: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Per node, the cores the plugin's agent pods use now (pods without a CPU figure
    count 0: a just-started container has none yet)."""
    used: dict[str, float] = {}
    for agent in agents:
        summary = summaries.get(agent["node"]) or {}
        for pod in summary.get("pods") or []:
            ref = pod.get("podRef", {}) if isinstance(pod, dict) else {}
            if ref.get("name") == agent["name"] and ref.get("namespace") == agent["namespace"]:
                used[agent["node"]] = used.get(agent["node"], 0.0) + (pod_cpu_cores(pod) or 0.0)
    return used


def agent_memory(agents: list[dict[str, str]],
                 summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``agents``: the plugin's pods (``namespace``, ``name``, ``node``); ``summaries``:
    each of their nodes' Summary API document. Returns per-pod working sets and the
    metrics: ``agent_memory_mib`` (the plugin's pods on a node, summed, averaged over
    the nodes), ``agent_memory_max_mib`` and ``agent_pods``."""
    if not agents:
        raise ParseError("no agent pods of the plugin were found")
    pods: list[dict[str, Any]] = []
    errors: list[str] = []
    per_node: dict[str, int] = {}
    for agent in agents:
        node = agent["node"]
        summary = summaries.get(node)
        if not isinstance(summary, dict) or not isinstance(summary.get("pods"), list):
            errors.append(f"{node}: no Summary API document")
            continue
        entry = next((p for p in summary["pods"] if isinstance(p, dict)
                      and p.get("podRef", {}).get("name") == agent["name"]
                      and p.get("podRef", {}).get("namespace") == agent["namespace"]), None)
        working_set = pod_working_set(entry) if entry is not None else None
        if working_set is None:
            errors.append(f"{agent['namespace']}/{agent['name']} on {node}: the kubelet "
                          "reports no memory for it")
            continue
        pods.append({**agent, "working_set_bytes": working_set})
        per_node[node] = per_node.get(node, 0) + working_set
    metrics: dict[str, Any] = {"agent_pods": len(pods)}
    if per_node:
        metrics["agent_memory_mib"] = round(statistics.fmean(per_node.values()) / MIB, 3)
        metrics["agent_memory_max_mib"] = round(max(per_node.values()) / MIB, 3)
    return {"pods": pods, "per_node_mib": {n: round(b / MIB, 3) for n, b in per_node.items()},
            "metrics": metrics, "errors": errors}


def parse(text: str) -> dict[str, Any]:
    """The metrics of a raw ``*-agents.json`` (``{"agents": [...], "summaries": {...}}``)."""
    try:
        data = json.loads(text)
        agents = [{"namespace": str(a["namespace"]), "name": str(a["name"]),
                   "node": str(a["node"])} for a in data["agents"]]
        summaries = dict(data["summaries"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"not an agent-memory outcome: {exc}") from None
    return dict(agent_memory(agents, summaries)["metrics"])
