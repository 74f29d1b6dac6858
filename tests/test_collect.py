"""collect over real SSH against emulated nodes: every node's facts and raw outputs land
in the run directory, the NIC that carries node_ip is the one described, and a second
run changes nothing (collect only reads nodes)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible_cli import ansible_playbook
from sshnodes import SshNodes

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.root




def _playbook(nodes: SshNodes, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return ansible_playbook(
        "-i", str(nodes.inventory(tmp_path / "hosts.yml")), "playbooks/collect.yml", *extra)


def test_collect_stores_each_nodes_facts(nodes: SshNodes, tmp_path: Path) -> None:
    nodes.nodes[1].exec("ip", "link", "set", "eth0", "mtu", "1400")
    run_dir = tmp_path / "run"
    proc = _playbook(nodes, tmp_path, "-e", f"cnilab_artifact_dir={run_dir}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    again = _playbook(nodes, tmp_path, "-e", f"cnilab_artifact_dir={run_dir}")
    assert again.returncode == 0 and "changed=1" not in again.stdout, again.stdout[-3000:]
    for node in nodes.nodes:
        folder = run_dir / "nodes" / node.name
        facts = json.loads((folder / "facts.json").read_text())
        assert facts["hostname"] == node.name
        assert facts["node_ip"] == node.ip
        assert facts["node_nic"]["name"] == "eth0"
        assert facts["node_nic"]["driver"]["driver"] == "veth"
        assert facts["node_nic"]["offloads"]["tcp-segmentation-offload"].startswith("on")
        assert facts["mtus"]["eth0"] == (1400 if node.name == "w1" else 1500)
        assert facts["sysctls"]["net.ipv4.tcp_congestion_control"]
        assert facts["versions"]["iperf3"].startswith("iperf 3.")
        assert facts["versions"]["kubeadm"] is None          # not on these nodes
        assert facts["kernel"]["release"] == os.uname().release
        assert node.ip in (folder / "ip-addr.txt").read_text()
        assert "*filter" in (folder / "iptables-nft-save.txt").read_text() or \
            (folder / "iptables-nft-save.txt").read_text() == ""
        assert (folder / "ethtool-k-eth0.txt").read_text().startswith("Features for eth0")


def test_wrong_node_ip_is_named(nodes: SshNodes, tmp_path: Path) -> None:
    inventory = nodes.inventory(tmp_path / "hosts.yml")
    text = inventory.read_text().replace(f"node_ip: {nodes.nodes[2].ip}", "node_ip: 10.9.9.9")
    inventory.write_text(text)
    proc = ansible_playbook(
        "-i", str(inventory),
        "playbooks/collect.yml", "-e", f"cnilab_artifact_dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert "w2: no link carries node_ip 10.9.9.9 (inventory error?)" in proc.stdout


def test_collect_without_a_destination_is_refused(nodes: SshNodes, tmp_path: Path) -> None:
    proc = _playbook(nodes, tmp_path)
    assert proc.returncode == 2
    assert "collect_dest is empty" in proc.stdout
