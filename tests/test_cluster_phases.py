"""The cluster checks before and after the CNI, and the CNI readiness rule, run by real
Ansible over real SSH against emulated nodes whose control plane answers `kubectl`
from a FAKE API (tests/fake_kube.py: nodes NotReady with the kubelet's reason until a
CNI configuration exists on that node, DaemonSets scheduled by their node selection).

What a real kubeadm cluster does that these tests hold the roles to:
- before any CNI, every node is NotReady and CoreDNS Pending, so `cluster up` (and the
  `cluster.yml` step of `switch`) can only check registration, kubelets and the static
  pods (kubeadm docs: DNS "will not be scheduled until CNI is installed");
- flannel v0.12.0 ships one DaemonSet per architecture: on amd64 nodes four of them
  select no node, which is not a failure;
- after the CNI, every node is Ready and CoreDNS runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ansible_cli import ansible_playbook
from fake_kube import FakeApi, shim_text
from sshnodes import Node, SshNodes

from cnilab.cluster.verify import cluster_problems

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT.parent / "shared" / "fixtures" / "upstream"
MINI = ROOT / "tests" / "data" / "manifests"
NAMES = ["cp1", "w1", "w2"]


@dataclass
class Cluster:
    nodes: SshNodes
    api: FakeApi
    inventory: Path

    def reset(self, kubernetes: str) -> None:
        """A freshly joined cluster of the given version: no CNI configuration, no
        applied objects, every kubelet posting."""
        self.api.kubernetes = kubernetes
        self.api.objects.clear()
        self.api.calls.clear()
        for node in self.nodes.nodes:
            node.exec("sh", "-c", "rm -rf /etc/cni/net.d")
            self.api.nodes[node.name].kubelet_posting = True

    def listing(self) -> dict[str, object]:
        rc, out, err = self.api.kubectl(["get", "nodes,pods", "--namespace", "kube-system",
                                         "--output", "json"], {})
        assert rc == 0, err
        return dict(json.loads(out))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and sshd")
    with SshNodes(NAMES, images={n: "debian-12" for n in NAMES}, tag=4) as emulated:
        api = FakeApi()
        server = api.serve(emulated.workdir / "kube-api.sock")
        try:
            shim = emulated.workdir / "kubectl"
            shim.write_text(shim_text(emulated.workdir / "kube-api.sock"))
            emulated.nodes[0].exec("install", "-m", "0755", str(shim), "/usr/local/bin/kubectl")
            for index, node in enumerate(emulated.nodes):    # kubeadm init, then joins
                api.register(node.name, node.ip, _shell(node), control_plane=index == 0)
            inventory = emulated.inventory(tmp_path_factory.mktemp("inv") / "hosts.yml")
            yield Cluster(emulated, api, inventory)
        finally:
            server.shutdown()
            server.server_close()


def _shell(node: Node) -> Callable[[str], str]:
    return lambda command: node.exec("sh", "-c", command).stdout


def _playbook(cluster: Cluster, *args: str) -> tuple[int, str]:
    proc = ansible_playbook("-i", str(cluster.inventory), *args,
                            "-e", "verify_cluster_retries=2", "-e", "verify_cluster_delay=1",
                            timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.root
def test_cluster_up_checks_what_a_cluster_without_a_cni_can_be(cluster: Cluster) -> None:
    cluster.reset("1.36.4")
    listing = cluster.listing()
    # what the API shows before a CNI: nodes NotReady with the kubelet's reason, CoreDNS
    # Pending; the check of a networked cluster fails on exactly that
    networked = cluster_problems(listing, "networked",
                                 {n.name: n.ip for n in cluster.nodes.nodes}, ["cp1"])
    assert "node w1 is not Ready (KubeletNotReady: container runtime network not ready: " \
        "NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns " \
        "error: cni plugin not initialized)" in networked
    assert any(p.startswith("pod kube-system/coredns-") and "is Pending (Unschedulable" in p
               for p in networked), networked
    rc, out = _playbook(cluster, "playbooks/cluster.yml", "--tags", "verify_cluster")
    assert rc == 0, out[-4000:]
    assert "Verify cluster | Wait until nodes and system pods are as the phase requires" in out


@pytest.mark.root
def test_cluster_up_names_a_node_registered_wrongly(cluster: Cluster) -> None:
    cluster.reset("1.36.4")
    cluster.api.nodes["w2"].kubelet_posting = False
    rc, out = _playbook(cluster, "playbooks/cluster.yml", "--tags", "verify_cluster",
                        "-e", json.dumps({"verify_cluster_expected": {
                            "cp1": cluster.nodes.nodes[0].ip, "w1": "10.0.2.15",
                            "w2": cluster.nodes.nodes[2].ip}}))
    assert rc == 2
    assert "registered: node w1: InternalIP " f"{cluster.nodes.nodes[1].ip}, inventory " \
        "node_ip 10.0.2.15" in out
    assert "node w2: its kubelet posts no status (Ready Unknown: Kubelet stopped posting " \
        "node status.)" in out


def _deploy_flannel(cluster: Cluster, manifest: Path) -> tuple[int, str]:
    return _playbook(cluster, "playbooks/cni.yml", "--skip-tags", "cni_mode_check",
                     "-e", "cnilab_profile=paper-2020", "-e", "cnilab_cni=flannel",
                     "-e", "cnilab_cni_mode=vxlan", "-e", f"cni_manifest_from_file={manifest}",
                     "-e", "cni_manifest_ready_retries=2", "-e", "cni_manifest_ready_delay=1")


def _per_arch_cases() -> list[Path]:
    cases = [MINI / "flannel-per-arch-mini.yml"]
    real = UPSTREAM / "flannel" / "v0.12.0" / "kube-flannel.yml"
    return cases + ([real] if real.exists() else [])


@pytest.mark.root
@pytest.mark.parametrize("manifest", _per_arch_cases(), ids=lambda p: p.name)
def test_per_architecture_daemonsets_are_ready_on_amd64_nodes(cluster: Cluster,
                                                             manifest: Path) -> None:
    """flannel v0.12.0 (paper-2020): its DaemonSets for arm64, arm, ppc64le and s390x
    select none of these amd64 nodes; the amd64 one runs on all three. Once it has
    written each node's CNI configuration, the nodes turn Ready and CoreDNS runs."""
    cluster.reset("1.18.17")
    rc, out = _deploy_flannel(cluster, manifest)
    assert rc == 0, out[-4000:]
    rc, listed, _ = cluster.api.kubectl(
        ["get", "daemonsets", "--all-namespaces", "-l", "app=flannel", "-o", "json"], {})
    counts = {d["metadata"]["name"]: d["status"]["desiredNumberScheduled"]
              for d in json.loads(listed)["items"]}
    assert counts["kube-flannel-ds-amd64"] == 3
    assert len(counts) > 1 and all(v == 0 for k, v in counts.items() if "amd64" not in k)
    assert "CNI | Require every node Ready and CoreDNS running" in out
    assert cluster_problems(cluster.listing(), "networked",
                            {n.name: n.ip for n in cluster.nodes.nodes}, ["cp1"]) == []
    for node in cluster.nodes.nodes:
        assert node.exec("sh", "-c", "ls /etc/cni/net.d/*.conflist").returncode == 0


@pytest.mark.root
def test_a_cni_that_does_not_cover_every_node_is_named(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    """A DaemonSet that tolerates no taint skips the control plane (and, NotReady, every
    node): the readiness rule counts nodes, not DaemonSets."""
    cluster.reset("1.18.17")
    documents = list(yaml.safe_load_all((MINI / "flannel-per-arch-mini.yml").read_text()))
    for document in documents:
        if document["kind"] == "DaemonSet":
            document["spec"]["template"]["spec"]["tolerations"] = [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoSchedule"}]
    manifest = tmp_path / "flannel-no-control-plane.yml"
    manifest.write_text(yaml.safe_dump_all(documents))
    rc, out = _deploy_flannel(cluster, manifest)
    assert rc == 2
    assert "flannel not ready: kube-flannel-ds-amd64, kube-flannel-ds-arm64: scheduled on " \
        "2 of the 3 nodes" in out
