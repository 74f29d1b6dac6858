"""Cluster checks over Node and Pod lists (written in the shape `kubectl get -o json` prints;
no API server can run here; tests/test_cluster_phases.py runs them through the roles
against the FAKE API)."""

from __future__ import annotations

from typing import Any

from cnilab.cluster.verify import (
    cluster_problems,
    control_plane_problems,
    pod_problems,
    readiness_problems,
    registration_problems,
)


def _node(name: str, ip: str, ready: str = "True", reason: str = "",
          message: str = "") -> dict[str, Any]:
    condition = {"type": "Ready", "status": ready, "reason": reason, "message": message}
    return {"kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {k: v for k, v in condition.items() if v}],
                       "addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": name}]}}


EXPECTED = {"cp1": "192.168.56.10", "w1": "192.168.56.11", "w2": "192.168.56.12"}


NOT_READY = ("KubeletNotReady", "container runtime network not ready: NetworkReady=false "
             "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin "
             "not initialized")


def test_healthy_cluster_has_no_problems() -> None:
    nodes = {"items": [_node(n, ip) for n, ip in EXPECTED.items()]}
    assert registration_problems(nodes, EXPECTED) == []
    assert readiness_problems(nodes) == []


def test_nat_address_missing_and_unknown_nodes() -> None:
    nodes = {"items": [_node("cp1", "192.168.56.10"), _node("w1", "10.0.2.15"),
                       _node("w9", "192.168.56.19", ready="Unknown")]}
    assert registration_problems(nodes, EXPECTED) == [
        "node w1: InternalIP 10.0.2.15, inventory node_ip 192.168.56.11",
        "node w9 is in the cluster but not in the inventory",
        "node w2 from the inventory has not joined"]


def test_not_ready_before_the_cni_is_registered_but_not_networked() -> None:
    """The kubelet reports NotReady until a CNI configuration exists: registered, not
    networked; a kubelet that stopped posting (Unknown) is neither."""
    down = {"items": [_node(n, ip, "False", *NOT_READY) for n, ip in EXPECTED.items()]}
    assert registration_problems(down, EXPECTED) == []
    assert readiness_problems(down) == [
        f"node {n} is not Ready ({NOT_READY[0]}: {NOT_READY[1]})" for n in EXPECTED]
    stopped = {"items": [_node("cp1", "192.168.56.10", "False", *NOT_READY),
                         _node("w1", "192.168.56.11", "Unknown", "NodeStatusUnknown",
                               "Kubelet stopped posting node status."),
                         _node("w2", "192.168.56.12", "False", *NOT_READY)]}
    assert registration_problems(stopped, EXPECTED) == [
        "node w1: its kubelet posts no status (Ready Unknown: Kubelet stopped posting node "
        "status.)"]


def _static(component: str, node: str, phase: str = "Running") -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"name": f"{component}-{node}",
                                        "namespace": "kube-system",
                                        "labels": {"component": component,
                                                   "tier": "control-plane"}},
            "status": {"phase": phase,
                       "containerStatuses": [{"name": component, "ready": phase == "Running"}]}}


def test_control_plane_static_pods_and_coredns_by_phase() -> None:
    components = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    static = [_static(c, "cp1") for c in components]
    pending_dns = {"kind": "Pod", "metadata": {"name": "coredns-1", "namespace": "kube-system",
                                               "labels": {"k8s-app": "kube-dns"}},
                   "status": {"phase": "Pending", "conditions": [
                       {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/3 nodes are available"}]}}
    nodes = [_node(n, ip, "False", *NOT_READY) for n, ip in EXPECTED.items()]
    before = {"items": [*nodes, *static, pending_dns]}
    assert control_plane_problems({"items": static}, ["cp1"]) == []
    assert cluster_problems(before, "registered", EXPECTED, ["cp1"]) == []
    networked = cluster_problems(before, "networked", EXPECTED, ["cp1"])
    assert networked[-1] == "pod kube-system/coredns-1 is Pending (Unschedulable: 0/3 nodes " \
        "are available)"
    assert len(networked) == 4           # three nodes NotReady, CoreDNS once
    missing = cluster_problems({"items": [*nodes, *static[1:]]}, "registered", EXPECTED,
                               ["cp1"])
    assert missing == ["static pod kube-system/etcd-cp1 is missing"]
    pending = cluster_problems({"items": [*nodes, *static[1:], _static("etcd", "cp1", "Pending")]},
                               "registered", EXPECTED, ["cp1"])
    assert pending == ["pod kube-system/etcd-cp1 is Pending"]
    no_dns = cluster_problems({"items": [_node(n, ip) for n, ip in EXPECTED.items()]},
                              "networked", EXPECTED, [])
    assert no_dns == ["no CoreDNS pod (label k8s-app=kube-dns) in kube-system"]


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
