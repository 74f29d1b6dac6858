"""The CNI agents' memory from the kubelet's Summary API (cnilab/bench/parsers/kubelet.py).

The documents below are shaped as k8s.io/kubelet/pkg/apis/stats/v1alpha1 (Summary: node,
pods; PodStats: podRef, containers, memory; MemoryStats: time, usageBytes,
workingSetBytes, rssBytes; every byte count ``omitempty``). Kubelets before pod-level
stats report containers only (telegraf's kubernetes input tests carry such a 2016
response: pods with containers' memory and no pod ``memory``), and a container that is
not running has no ``memory`` at all; both shapes are here, with our own numbers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cnilab.bench.parsers import ParseError
from cnilab.bench.parsers.kubelet import MIB, agent_memory, parse, pod_working_set


def _pod(name: str, pod_level: int | None, containers: list[int | None]) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "podRef": {"name": name, "namespace": "kube-system", "uid": f"uid-{name}"},
        "containers": [{"name": f"c{i}", **({"memory": {"time": "2026-11-30T12:00:00Z",
                                                      "usageBytes": ws + 100,
                                                      "workingSetBytes": ws}}
                                             if ws is not None else {})}
                       for i, ws in enumerate(containers)]}
    if pod_level is not None:
        pod["memory"] = {"time": "2026-11-30T12:00:00Z", "workingSetBytes": pod_level,
                         "usageBytes": pod_level + 5000}
    return pod


def test_the_pod_level_working_set_wins_and_containers_are_summed_without_it() -> None:
    # pod level: includes the pause container and pod overhead, so it differs from the sum
    assert pod_working_set(_pod("a", 50 * MIB, [40 * MIB, 9 * MIB])) == 50 * MIB
    # an older kubelet: containers only; a stopped container has no memory
    assert pod_working_set(_pod("b", None, [40 * MIB, None, 2 * MIB])) == 42 * MIB
    assert pod_working_set(_pod("c", None, [None])) is None
    with pytest.raises(ParseError, match="pod d workingSetBytes: not a byte count"):
        pod_working_set(_pod("d", -1, []))
    with pytest.raises(ParseError, match="not a byte count"):
        pod_working_set({"podRef": {"name": "e"}, "memory": {"workingSetBytes": "42"}})


def test_per_node_sums_averaged_over_nodes() -> None:
    agents = [{"namespace": "kube-system", "name": "calico-node-1", "node": "w1"},
              {"namespace": "kube-system", "name": "calico-node-2", "node": "w2"},
              {"namespace": "kube-system", "name": "calico-typha-x", "node": "w2"}]
    summaries = {
        "w1": {"node": {"nodeName": "w1"}, "pods": [_pod("calico-node-1", 150 * MIB, []),
                                                    _pod("coredns", 20 * MIB, [])]},
        "w2": {"node": {"nodeName": "w2"}, "pods": [_pod("calico-node-2", 170 * MIB, []),
                                                    _pod("calico-typha-x", None, [30 * MIB])]},
    }
    found = agent_memory(agents, summaries)
    assert found["per_node_mib"] == {"w1": 150.0, "w2": 200.0}
    assert found["metrics"] == {"agent_pods": 3, "agent_memory_mib": 175.0,
                                "agent_memory_max_mib": 200.0}
    assert not found["errors"]
    text = json.dumps({"agents": agents, "summaries": summaries})
    assert parse(text) == found["metrics"]     # what `cnilab verify` recomputes


def test_a_pod_the_kubelet_does_not_report_is_an_error_naming_it() -> None:
    agents = [{"namespace": "kube-system", "name": "weave-net-1", "node": "w1"},
              {"namespace": "kube-system", "name": "weave-net-2", "node": "w2"}]
    summaries = {"w1": {"pods": [_pod("weave-net-1", None, [None])]}}
    found = agent_memory(agents, summaries)
    assert found["errors"] == [
        "kube-system/weave-net-1 on w1: the kubelet reports no memory for it",
        "w2: no Summary API document"]
    assert found["metrics"] == {"agent_pods": 0}
    with pytest.raises(ParseError, match="no agent pods of the plugin were found"):
        agent_memory([], summaries)
    with pytest.raises(ParseError, match="not an agent-memory outcome"):
        parse('{"agents": [{"name": "x"}]}')
