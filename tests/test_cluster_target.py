"""The cluster target: the benchmark engine walking a matrix on a kubeadm cluster.

What cannot run here is faked and named: the Kubernetes API server with the control
plane's kubectl (``fake_cluster.FakeKubectl``, which validates every object strictly
for the pinned Kubernetes) and the switch itself (reset, kubeadm, the plugin's role:
those roles are tested in their own modules), replaced by building the netns lab's
datapath for the mode. Everything the target does through them is real: the pod
layout and placements, the readiness gate (ping across "nodes"), iperf3 and netperf
through ``kubectl exec`` argv lines, per-node CPU accounting, the filter rules on both
nodes' FORWARD paths, and the engine's records.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_cluster import FakeKubectl, LabNodeShell

from cnilab.bench import kube_startup
from cnilab.bench.engine import RunReporter, build_manifest, execute
from cnilab.bench.executor import Completed
from cnilab.bench.filter_rules import CHAIN
from cnilab.bench.kube import KubectlApi, PopenSession, startup_probe
from cnilab.bench.parsers import startup as startup_parser
from cnilab.cluster.operations import CniChoice
from cnilab.errors import CnilabError, InputError
from cnilab.inventory import Node
from cnilab.lab import sh
from cnilab.pins import load_pins
from cnilab.rundir import RunDir
from cnilab.spec import ModeRef, load_spec_text
from cnilab.targets.cluster import IMAGE_RECORD, PODS, ClusterTarget, bench_nodes
from cnilab.targets.netns import NetnsTarget

NODES = {"w1": "h1", "w2": "h2"}     # inventory node -> lab host


def _inventory(path: Path) -> Path:
    def host(ip: str) -> dict[str, str]:
        return {"ansible_host": ip, "node_ip": ip}

    path.write_text(yaml.safe_dump({"all": {"children": {
        "control_plane": {"hosts": {"cp1": host("10.251.9.10")}},
        "workers": {"hosts": {"w1": host("10.251.9.11"), "w2": host("10.251.9.12")}}}}}))
    return path


def test_bench_nodes_are_two_workers_first() -> None:
    cp = Node("cp1", "control_plane", "10.0.0.1", {})
    w1, w2 = Node("w1", "workers", "10.0.0.2", {}), Node("w2", "workers", "10.0.0.3", {})
    assert bench_nodes([cp, w1, w2]) == (w1, w2)
    assert bench_nodes([cp, w1]) == (w1, cp)
    with pytest.raises(InputError, match="at least two nodes"):
        bench_nodes([cp])


def test_unavailable_names_what_the_profile_lacks(tmp_path: Path) -> None:
    target = ClusterTarget(_inventory(tmp_path / "hosts.yml"), "paper-2020",
                           manifest_cache=tmp_path, fetch_to_plan=False)
    # every plugin of the study has a pinned file on the paper profile (Calico v3.14 at
    # the docs archive); one not cached is left to the deploy, which fetches and checks it
    for cni, mode in (("calico", "bgp"), ("flannel", "vxlan"), ("weave", "fastdp"),
                      ("cilium", "vxlan"), ("kube-router", "bgp")):
        assert target.unavailable(ModeRef(cni, mode, False)) is None
    assert "modes are" in str(target.unavailable(ModeRef("flannel", "ipvlan", False)))
    # the NIC's tunnel offload is switched only in the netns lab
    assert "tunnel offload off is not implemented for clusters" in str(
        target.unavailable(ModeRef("flannel", "vxlan", False, offload=False)))


def test_unavailable_renders_the_mode_before_any_node_is_touched(tmp_path: Path) -> None:
    """Planning renders each mode as its deploy will, from the verified cache (as on a
    controller that fetched the pinned file once): kube-router v1.0.1, which cannot
    derive its pod MTU, renders with the node MTU the deploy reads, while the same
    render without one is the refusal a deploy would have hit hours into a run."""
    from cnilab.cni.base import ClusterNetwork
    from cnilab.lab.plan import POD_CIDR
    from cnilab.manifests import lock
    from cnilab.manifests.render import release, render

    upstream = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / \
        "upstream" / "kube-router" / "v1.0.1" / "kubeadm-kuberouter.yaml"
    if not upstream.exists():
        pytest.skip("upstream fixture kube-router/v1.0.1 absent (../shared/fixtures/upstream)")
    cache = tmp_path / "cache"
    cache.mkdir()
    url = release("kube-router", "paper-2020")[1]
    lock.cached_path(url, cache).write_bytes(upstream.read_bytes())
    target = ClusterTarget(_inventory(tmp_path / "hosts.yml"), "paper-2020",
                           manifest_cache=cache, fetch_to_plan=False)
    assert target.unavailable(ModeRef("kube-router", "overlay-full", True)) is None
    with pytest.raises(InputError, match="cannot derive the pod MTU"):
        render("kube-router", "bgp", "paper-2020", ClusterNetwork(POD_CIDR, ("10.0.0.1",)),
               cache_dir=cache)
    # a file not in the cache, with downloads off (tests never leave the machine), is
    # left to the deploy, which fetches and checks it
    offline = ClusterTarget(_inventory(tmp_path / "hosts.yml"), "paper-2020",
                            manifest_cache=tmp_path / "empty", fetch_to_plan=False)
    assert offline.unavailable(ModeRef("flannel", "vxlan", False)) is None


class _FakeSwitch:
    """Stands in for `cnilab switch` (reset, kubeadm, the plugin's role), which needs
    real machines: builds the mode's datapath in the netns lab instead."""

    def __init__(self, tmp_path: Path) -> None:
        self.lab = NetnsTarget()
        self.choices: list[CniChoice] = []
        self.kubectl: FakeKubectl | None = None
        self.record = tmp_path / "image.json"
        self.record.write_text(json.dumps({"reference": "cnilab.local/bench@sha256:" + "a" * 64,
                                           "digest": "sha256:" + "a" * 64, "tag": "t"}))

    def provision(self, choice: CniChoice, directory: Path) -> Path:
        self.choices.append(choice)
        self.lab.up(ModeRef(choice.cni, choice.mode, choice.policy), workdir=directory)
        assert self.lab.plan is not None
        self.kubectl = FakeKubectl(self.lab.plan, NODES)
        self.kubectl.networked = set(NODES)     # the switch installed the CNI everywhere
        return directory

    def connect(self, node: Node) -> LabNodeShell:
        assert self.lab.plan is not None
        netns = {h.name: h.netns for h in self.lab.plan.hosts}
        host = NODES.get(node.name, "h1")   # the control plane's kubectl runs anywhere
        return LabNodeShell(netns[host], self.kubectl, {IMAGE_RECORD: self.record})


SPEC = """\
name: cluster
matrix: [{cni: flannel, mode: vxlan}, {cni: calico, mode: bgp}]
placements: [intra-host, inter-host, service, host-network]
tests:
  - suite: iperf3-tcp
    params: {duration_s: 1, omit_s: 0}
  - suite: netperf-tcp-rr
    placements: [inter-host]
    params: {duration_s: 1}
    sweep: {policy_rules: [0, 1000]}
  - suite: agent-memory
repetitions: 1
warmup: 0
"""


@pytest.mark.root
@pytest.mark.e2e
@pytest.mark.alone   # each mode's idle check watches the whole machine (both "nodes")
def test_engine_walks_the_matrix_through_the_cluster_target(clean_lab: None,
                                                            tmp_path: Path) -> None:
    switch = _FakeSwitch(tmp_path)
    target = ClusterTarget(_inventory(tmp_path / "hosts.yml"), provision=switch.provision,
                           connect=switch.connect, manifest_cache=tmp_path,
                           fetch_to_plan=False)
    spec = load_spec_text(SPEC, "cluster.yaml")
    run = RunDir.create(tmp_path, "r")
    run.write_manifest(build_manifest(spec, load_pins(), target, run, ["test"]))
    try:
        outcome = execute(spec, target, run, reporter=RunReporter())
    finally:
        switch.lab.down()     # the switch's datapath outlives the target, as a CNI does
    records = list(run.results())
    assert outcome.ok, [f["error"] for f in outcome.failures]
    # every mode got its own switch, in matrix order
    assert [(c.cni, c.mode) for c in switch.choices] == [("flannel", "vxlan"), ("calico", "bgp")]
    assert len(records) == 2 * (4 + 2 + 1)
    manifest = run.read_manifest()
    assert manifest["target"]["kind"] == "cluster" and manifest["target"]["emulation"] is False
    assert manifest["target"]["nodes"] == {"a": "w1", "b": "w2", "control_plane": "cp1"}
    assert manifest["machine_role"] == "controller"
    by_place = {(r["cell"]["cni"], r["cell"]["placement"], r["cell"]["suite"],
                 r["cell"].get("condition", {}).get("policy_rules", 0)): r for r in records}
    inter = by_place[("flannel", "inter-host", "iperf3-tcp", 0)]
    assert inter["metrics"]["throughput_gbps"] > 0
    # the client and the server pod were on different nodes, each node's CPU counted
    assert inter["endpoints"]["client"]["host"] == "w1"
    assert inter["endpoints"]["server"]["host"] == "w2"
    assert set(inter["cpu_machines"]) == {"w1", "w2"}
    assert inter["metrics"]["client_node_cpu_busy_s"] > 0
    assert inter["cpu_scope"].startswith("nodes:")
    assert "perf: not run on the nodes" in inter["cycles_source"]
    intra = by_place[("flannel", "intra-host", "iperf3-tcp", 0)]
    assert intra["endpoints"]["server"]["host"] == "w1" and "cpu_machines" not in intra
    service = by_place[("calico", "service", "iperf3-tcp", 0)]
    assert service["endpoints"]["server"]["kind"] == "service"
    assert service["endpoints"]["server"]["address"].startswith("10.96.")
    host = by_place[("calico", "host-network", "iperf3-tcp", 0)]
    assert host["endpoints"]["server"]["kind"] == "host"
    # counted on the node's interface holding its address, not a pod's eth0
    assert host["metrics"]["client_interface_packets"] > 0
    # the agents' working set, from each node's kubelet through the API server's proxy
    memory = by_place[("calico", "node", "agent-memory", 0)]
    assert memory["status"] == "ok", memory["error"]
    assert memory["metrics"] == {"agent_pods": 2, "agent_memory_mib": 180.0,
                                 "agent_memory_max_mib": 180.0}
    raw = json.loads((run.path / memory["raw"]["agents"]).read_text())
    assert raw["selector"] == "k8s-app=calico-node" and set(raw["summaries"]) == set(NODES)
    # each mode's idle check: both nodes' busy share and the agents' (FAKE: 0.02 cores)
    cores = os.cpu_count() or 1
    idle = json.loads((run.path / manifest["lab_snapshots"]["calico/bgp"]).read_text())
    assert set(idle["idle_cpu"]) == {"w1", "w2"}
    assert idle["idle_cpu"]["w1"]["agents_percent"] == round(2.0 / cores, 2)
    assert 0 <= idle["idle_cpu"]["w1"]["node_busy_percent"] <= 100
    ruled = by_place[("calico", "inter-host", "netperf-tcp-rr", 1000)]
    assert ruled["metrics"]["transactions_per_s"] > 0
    # snapshots hold the pods, the image by digest and the readiness gate
    snapshot = json.loads((run.path / manifest["lab_snapshots"]["flannel/vxlan"]).read_text())
    assert set(snapshot["pods"]) == {p.name for p in PODS}
    assert snapshot["images"]["w1"]["reference"].startswith("cnilab.local/bench@sha256:")
    assert "cli-a -> srv-b answered" in snapshot["readiness_gate"]
    assert snapshot["system_images"] == {   # the digests kube-system's pods resolved to
        "example.invalid/cni-agent:v1": ["example.invalid/cni-agent@sha256:" + "d" * 64]}
    assert any("Real kubeadm cluster" in line for line in manifest["fidelity"]["calico/bgp"])
    # the report names the cluster, not an emulation
    from cnilab.report import write_report

    write_report(run.path)
    report = (run.path / "report.md").read_text()
    assert "- **Cluster:** inventory" in report and "benchmark nodes w1 and w2" in report
    assert "Emulation notice" not in report and "Real kubeadm cluster" in report
    # every exec went into the benchmark namespace, through the admin kubeconfig
    assert switch.kubectl is not None
    execs = [c for c in switch.kubectl.calls if "exec" in c]
    assert execs and all(c[1:3] == ["--kubeconfig", "/etc/kubernetes/admin.conf"] and
                         c[c.index("exec") + 2] == "cnilab-bench" for c in execs)


@pytest.mark.root
@pytest.mark.e2e
@pytest.mark.alone   # each mode's idle check watches the whole machine (both "nodes")
def test_a_mode_that_cannot_be_deployed_is_skipped_and_the_run_goes_on(
        clean_lab: None, tmp_path: Path) -> None:
    switch = _FakeSwitch(tmp_path)

    def provision(choice: CniChoice, directory: Path) -> Path:
        if choice.cni == "weave":
            raise CnilabError("cni.yml failed on w2: weave-net DaemonSet not ready")
        return switch.provision(choice, directory)

    target = ClusterTarget(_inventory(tmp_path / "hosts.yml"), provision=provision,
                           connect=switch.connect, manifest_cache=tmp_path,
                           fetch_to_plan=False)
    spec = load_spec_text("""\
name: deploy-failure
matrix: [{cni: weave, mode: fastdp}, {cni: flannel, mode: host-gw}]
placements: [inter-host]
tests: [{suite: netperf-tcp-rr, params: {duration_s: 1}}]
repetitions: 1
warmup: 0
""", "failure.yaml")
    run = RunDir.create(tmp_path, "r")
    run.write_manifest(build_manifest(spec, load_pins(), target, run, ["test"]))
    try:
        outcome = execute(spec, target, run, reporter=RunReporter())
    finally:
        switch.lab.down()
    assert outcome.ok
    records = list(run.results())
    assert [r["cell"]["cni"] for r in records] == ["flannel"]
    state = run.read_state()
    assert state["status"] == "complete"
    assert state["skipped_modes"] == {"weave/fastdp": "could not be brought up: cni.yml "
                                      "failed on w2: weave-net DaemonSet not ready"}


@pytest.mark.root
@pytest.mark.e2e
@pytest.mark.alone   # each mode's idle check watches the whole machine (both "nodes")
def test_readiness_gate_and_rules_on_both_nodes(clean_lab: None, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    switch = _FakeSwitch(tmp_path)
    target = ClusterTarget(_inventory(tmp_path / "hosts.yml"), provision=switch.provision,
                           connect=switch.connect)
    target.up(ModeRef("flannel", "host-gw"), workdir=tmp_path / "ansible")
    try:
        plan = switch.lab.plan
        assert plan is not None
        assert target.set_path_rules(1000, "rules") == 1000
        for host in plan.hosts:
            saved = sh.run(sh.in_netns(host.netns, ["iptables-save", "-t", "filter"])).stdout
            assert saved.count(f"-A {CHAIN} ") == 1000
        assert target.set_path_rules(0, "rules") == 0
        for host in plan.hosts:
            assert CHAIN not in sh.run(sh.in_netns(host.netns, ["iptables-save"])).stdout
        target.down()
        # the gate alone, as `cnilab deploy` runs it: pods up, ping, pods removed
        gate = target.verify_pod_network()
        assert gate["readiness_gate"] == "ping cli-a -> srv-a and cli-a -> srv-b answered"
        assert switch.kubectl is not None and not switch.kubectl.objects
        # break the path across nodes (host-gw: the route to the other node's pods)
        h1 = plan.hosts[0]
        sh.run(sh.in_netns(h1.netns, ["ip", "route", "del", plan.hosts[1].pod_subnet]))
        with pytest.raises(CnilabError, match=r"no reply from srv-b .* across nodes"):
            target.verify_pod_network()
        # a node without its CNI: its pods never leave ContainerCreating, and the
        # target says so with the kubelet's reason instead of measuring
        import cnilab.targets.cluster as cluster_target

        monkeypatch.setattr(cluster_target, "READY_TIMEOUT_S", 2.0)
        assert switch.kubectl is not None
        switch.kubectl.networked = {"w1"}
        with pytest.raises(CnilabError, match=r"benchmark pods not Ready after 2 s: .*srv-b "
                                              r"\(ContainerCreating: network is not ready: "
                                              r"container runtime network not ready"):
            target.verify_pod_network()
    finally:
        target.down()
        switch.lab.down()


# ------------------------------------------------------------------ pod start-up


class _StartupApi:
    """FAKE API for the start-up sequence: answers create with the control plane's
    clock, lists the batch as running and serves each pod's log lines."""

    def __init__(self, created: float, logs: dict[str, str]) -> None:
        self.created = created
        self.logs_by_pod = logs
        self.created_items: list[dict[str, Any]] = []
        self.deleted: list[list[str]] = []

    def run(self, argv: list[str], timeout: float | None,
            input_text: str | None = None) -> Completed:
        if argv[:2] == ["sh", "-c"]:
            assert "kubectl create -f -" in argv[2] and argv[2].startswith("date +%s.%N;")
            assert input_text is not None
            self.created_items = json.loads(input_text)["items"]
            return Completed(argv, 0, f"{self.created:.6f}\npods created\n", "", 0.0)
        verb = argv[1]
        if verb == "get":
            items = [{"metadata": i["metadata"], "status": {
                "podIP": "10.244.1.9", "containerStatuses": [
                    {"imageID": "sha256:x", "state": {"running": {}}}]}}
                for i in self.created_items]
            return Completed(argv, 0, json.dumps({"items": items}), "", 0.0)
        if verb == "logs":
            return Completed(argv, 0, self.logs_by_pod.get(argv[4], ""), "", 0.0)
        if verb == "delete":
            self.deleted.append(argv)
            return Completed(argv, 0, "", "", 0.0)
        raise AssertionError(argv)


def test_pod_startup_times_across_two_clocks() -> None:
    # control plane 2 s ahead of this machine, the node 0.5 s behind it
    clocks = kube_startup.Clocks(control_plane_s=2.0, node_s=-0.5, uncertainty_s=0.001)
    created_cp = 1000.0                      # = 998.0 here
    logs = {"startup-a7-1": "started 997.8\nfirst-reply 997.85\n",     # 998.3, 998.35 here
            "startup-a7-2": "started 998.1\nno-reply\n"}
    fake = _StartupApi(created_cp, logs)
    api = KubectlApi(run=fake.run, start=lambda argv: PopenSession(["true"]))
    raw = kube_startup.measure(api, "w1", "img@sha256:" + "b" * 64, "10.244.1.2", 2, 7, clocks,
                               timeout_s=5)
    pods = {p["pod"]: p for p in raw["pods"]}
    assert pods["startup-a7-1"]["ready_ms"] == pytest.approx(300.0)
    assert pods["startup-a7-1"]["first_packet_ms"] == pytest.approx(50.0)
    assert pods["startup-a7-2"]["error"] == "no reply from 10.244.1.2"
    assert raw["all_reachable_ms"] == pytest.approx(350.0)
    assert raw["clocks"]["control_plane_offset_s"] == 2.0
    # the batch was one request of pods pinned to the node, and removed afterwards
    assert {i["spec"]["nodeName"] for i in fake.created_items} == {"w1"}
    assert len(fake.created_items) == 2
    assert any("cnilab.io/startup=a7" in a for a in fake.deleted[-1])
    metrics = startup_parser.parse(json.dumps(raw))
    assert metrics["pods_failed"] == 1 and metrics["ready_mean_ms"] == pytest.approx(300.0)
    assert "netns_mean_ms" not in metrics     # the lab's steps are not guessed


def test_startup_probe_runs_and_stamps(tmp_path: Path) -> None:
    """The probe's shell script, run by a real sh against an address that answers."""
    script = startup_probe("127.0.0.1")[2].replace("/usr/local/bin/date", "date")
    proc = subprocess.run(["sh", "-c", script.replace("exec sleep infinity", "exit 0")],
                          capture_output=True, text=True, timeout=30, check=False)
    started, first, gave_up = kube_startup.parse_log(proc.stdout)
    assert started is not None and first is not None and first >= started and not gave_up


def test_startup_pods_validate_strictly() -> None:
    import kubernetes_validate
    from fake_cluster import _kubernetes_version

    from cnilab.bench.kube import bench_namespace, startup_pod

    version = _kubernetes_version()
    kubernetes_validate.validate(startup_pod("s-1", "w1", "img@sha256:" + "c" * 64,
                                             "10.244.1.2", "a1"), version, strict=True)
    kubernetes_validate.validate(bench_namespace(), version, strict=True)


def test_real_only_modes_run_on_clusters_and_are_skipped_by_the_lab(tmp_path: Path) -> None:
    target = ClusterTarget(_inventory(tmp_path / "hosts.yml"), manifest_cache=tmp_path,
                           fetch_to_plan=False)
    lab = NetnsTarget()
    for cni, mode in (("weave", "sleeve"), ("kube-router", "overlay-full"),
                      ("kube-router", "overlay-subnet")):
        assert target.unavailable(ModeRef(cni, mode, False)) is None
        why = lab.unavailable(ModeRef(cni, mode, False))
        if why is not None:     # None only without root, where the run stops anyway
            assert why == (f"{cni}/{mode} runs on real clusters only (--inventory): the netns "
                           "lab does not emulate it")


def test_resume_continues_on_the_target_it_started_on(tmp_path: Path) -> None:
    from cnilab.bench.engine import ensure_same_target

    inventory = _inventory(tmp_path / "hosts.yml")
    cluster = ClusterTarget(inventory, fetch_to_plan=False)
    spec = load_spec_text(SPEC, "cluster.yaml")
    run = RunDir.create(tmp_path, "r")
    run.write_manifest(build_manifest(spec, load_pins(), cluster, run, ["test"]))
    ensure_same_target(run, ClusterTarget(inventory, fetch_to_plan=False))
    with pytest.raises(InputError, match=rf"ran on the cluster target; resume it with "
                                         rf"--inventory {inventory.resolve()}"):
        ensure_same_target(run, NetnsTarget())
    with pytest.raises(InputError, match="ran with profile current, not paper-2020"):
        ensure_same_target(run, ClusterTarget(inventory, "paper-2020", fetch_to_plan=False))
