"""Cluster checks over Node and Pod lists (written in the shape `kubectl get -o json` prints;
no API server can run here)."""

from __future__ import annotations

from typing import Any

from cnilab.cluster.verify import node_problems, pod_problems


def _node(name: str, ip: str, ready: str = "True") -> dict[str, Any]:
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": ready}],
                       "addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": name}]}}


EXPECTED = {"cp1": "192.168.56.10", "w1": "192.168.56.11", "w2": "192.168.56.12"}


def test_healthy_cluster_has_no_problems() -> None:
    nodes = {"items": [_node(n, ip) for n, ip in EXPECTED.items()]}
    assert node_problems(nodes, EXPECTED) == []


def test_nat_address_not_ready_missing_and_unknown_nodes() -> None:
    nodes = {"items": [_node("cp1", "192.168.56.10"), _node("w1", "10.0.2.15"),
                       _node("w9", "192.168.56.19", ready="Unknown")]}
    assert node_problems(nodes, EXPECTED) == [
        "node w1: InternalIP 10.0.2.15, inventory node_ip 192.168.56.11",
        "node w9 is in the cluster but not in the inventory",
        "node w2 from the inventory has not joined"]
    down = {"items": [_node(n, ip, ready="False") for n, ip in EXPECTED.items()]}
    assert node_problems(down, EXPECTED) == [f"node {n} is not Ready" for n in EXPECTED]


def test_system_pods() -> None:
    pods = {"items": [
        {"metadata": {"name": "etcd-cp1", "namespace": "kube-system"},
         "status": {"phase": "Running", "containerStatuses": [{"name": "etcd", "ready": True}]}},
        {"metadata": {"name": "coredns-1", "namespace": "kube-system"},
         "status": {"phase": "Pending"}},
        {"metadata": {"name": "kube-proxy-x", "namespace": "kube-system"},
         "status": {"phase": "Running",
                    "containerStatuses": [{"name": "kube-proxy", "ready": False}]}}]}
    assert pod_problems(pods) == ["pod kube-system/coredns-1 is Pending",
                                  "pod kube-system/kube-proxy-x: containers not ready: kube-proxy"]
