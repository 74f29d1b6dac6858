"""The real-cluster mode checks, judged on datapaths built for real: the netns lab
builds each flannel backend the way flanneld programs it (flannel.1 VXLAN device with
VNI 1 / UDP 8472 and onlink routes, or host-gw routes via the peers' node IPs). The
check a role runs on a cluster node must accept the mode that is there and name what
is wrong with the other one, from the same `ip -j` output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cnilab.cni.registry import plugin
from cnilab.lab import core, sh
from cnilab.lab.plan import HostPlan, LabPlan, make_plan

pytestmark = [pytest.mark.root, pytest.mark.e2e]


def _built(cni: str, mode: str, pods: bool) -> Iterator[LabPlan]:
    """A lab datapath built for real (with pods where the plugin routes pod blocks only
    once pods exist), torn down after the test."""
    plan = make_plan(cni, mode)
    core.preflight(plan)
    core.ensure_hosts(plan)
    core.ensure_datapath(plan)
    if pods:
        core.ensure_pods(plan)
    yield plan
    core.down()


def _ip_json(netns: str, *args: str) -> list[dict[str, object]]:
    out = sh.run(sh.in_netns(netns, ["ip", "-j", *args])).stdout
    return list(json.loads(out or "[]"))


Peers = dict[str, tuple[str, str]]


def _node_view(plan: LabPlan, host: HostPlan) -> tuple[list[Any], list[Any], Peers]:
    """What roles/cni_manifest reads on a node and hands to ``mode_problems``: its links,
    its routes, and every other node's (node_ip, pod CIDR)."""
    return (_ip_json(host.netns, "-d", "link", "show"), _ip_json(host.netns, "route", "show"),
            {p.name: (p.underlay_ip, p.pod_subnet) for p in plan.peers(host)})


def _judged(check: Any, plan: LabPlan, host: HostPlan, other: str) -> list[str]:
    """The plugin's check passes the mode that is built and fails ``other``; returns
    what it says about ``other``."""
    links, routes, peers = _node_view(plan, host)
    assert check(plan.mode, links, routes, peers, plan.pod_cidr) == [], host.name
    wrong: list[str] = check(other, links, routes, peers, plan.pod_cidr)
    assert wrong, f"{host.name}: {other} check passed on a {plan.mode} datapath"
    return wrong


@pytest.fixture(params=["vxlan", "host-gw"])
def flannel_lab(request: pytest.FixtureRequest, clean_lab: None) -> Iterator[LabPlan]:
    yield from _built("flannel", request.param, pods=False)


def test_flannel_mode_check_on_the_built_datapath(flannel_lab: LabPlan) -> None:
    plan = flannel_lab
    other = {"vxlan": "host-gw", "host-gw": "vxlan"}[plan.mode]
    for host in plan.hosts:
        wrong = _judged(plugin("flannel").mode_problems, plan, host, other)
        if plan.mode == "vxlan":
            assert "flannel.1 exists: the vxlan backend is (or was) running, not host-gw" \
                in wrong
        else:
            assert "no flannel.1 VXLAN device: not the vxlan backend" in wrong
        # a peer whose subnet is not routed is named
        links, routes, peers = _node_view(plan, host)
        missing = plugin("flannel").mode_problems(plan.mode, links, routes,
                                        {**peers, "h9": ("10.0.0.9", "10.244.9.0/24")},
                                        plan.pod_cidr)
        assert missing == ["no route to h9's pod subnet 10.244.9.0/24"]


@pytest.fixture(params=["bgp", "vxlan"])
def calico_lab(request: pytest.FixtureRequest, clean_lab: None) -> Iterator[LabPlan]:
    yield from _built("calico", request.param, pods=True)


def test_calico_mode_check_on_the_built_datapath(calico_lab: LabPlan) -> None:
    plan = calico_lab
    other = {"bgp": "vxlan", "vxlan": "bgp"}[plan.mode]
    for host in plan.hosts:
        links, routes, peers = _node_view(plan, host)
        remote = [r for r in routes if str(r.get("dst", "")).startswith("10.244.")
                  and not str(r.get("dev", "")).startswith("cali")
                  and r.get("type") != "blackhole"]
        assert remote, f"{host.name}: no remote pod routes to judge"
        wrong = _judged(plugin("calico").mode_problems, plan, host, other)
        if plan.mode == "bgp":
            assert "no vxlan.calico device: not Calico's VXLAN mode" in wrong
        else:
            assert any("encapsulated, not plain BGP" in p for p in wrong)
        assert any("no tunl0 device" in p for p in
                   plugin("calico").mode_problems("ipip", links, routes, peers, plan.pod_cidr))


@pytest.fixture(params=[("kube-router", "bgp"), ("weave", "fastdp"), ("cilium", "vxlan"),
                        ("cilium", "native")])
def other_lab(request: pytest.FixtureRequest, clean_lab: None) -> Iterator[LabPlan]:
    yield from _built(*request.param, pods=True)


def test_kube_router_weave_and_cilium_mode_checks_on_the_built_datapath(
        other_lab: LabPlan) -> None:
    plan = other_lab
    for host in plan.hosts:
        links, routes, peers = _node_view(plan, host)
        if plan.cni == "cilium":
            _judged(plugin("cilium").mode_problems, plan, host,
                    {"vxlan": "native", "native": "vxlan"}[plan.mode])
        elif plan.cni == "kube-router":
            router = plugin("kube-router")
            assert router.mode_problems("bgp", links, routes, peers, plan.pod_cidr) == [], \
                host.name
            assert router.mode_problems("overlay-subnet", links, routes, peers,
                                        plan.pod_cidr) == []
            wrong = router.mode_problems("overlay-full", links, routes, peers, plan.pod_cidr)
            assert wrong and all("not kube-router overlay-full" in p for p in wrong)
        else:
            weave = plugin("weave")
            assert weave.mode_problems("fastdp", links, routes, {}, plan.pod_cidr) == [], host.name
            assert weave.mode_problems("sleeve", links, routes, {}, plan.pod_cidr) == [
                "vxlan-6784 exists: fast datapath is (or was) running, not sleeve"]
