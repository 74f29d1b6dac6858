"""bench_tools over real SSH against emulated nodes. Building from release sources needs
the internet (not here); what runs here is the version gate that guards every result:
the check reads what the binaries report and fails, naming the node, on a mismatch; and
a tool without a recorded source sha256 is refused before anything is fetched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_cli import ansible_playbook
from sshnodes import SshNodes

ROOT = Path(__file__).resolve().parent.parent
TOOLS = yaml.safe_load((ROOT / "versions" / "tools.yml").read_text())["tools"]
pytestmark = pytest.mark.root
NODE_NAMES = ["cp1", "w1"]   # the conftest's emulated nodes




def _playbook(nodes: SshNodes, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return ansible_playbook(
        "-i", str(nodes.inventory(tmp_path / "hosts.yml")), "playbooks/cluster.yml",
        "--tags", "bench_tools", *extra)


def test_check_accepts_the_pinned_versions(nodes: SshNodes, tmp_path: Path) -> None:
    # the nodes' /usr/bin carries this machine's Debian builds of the pinned versions
    proc = _playbook(nodes, tmp_path, "-e", "bench_tools_state=checked",
                     "-e", "bench_tools_bin_dir=/usr/bin")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Bench tools | Require the pinned versions" in proc.stdout
    assert "changed=0" in proc.stdout and "failed=0" in proc.stdout


def test_check_names_a_node_with_another_version(nodes: SshNodes, tmp_path: Path) -> None:
    pins = json.loads(json.dumps(TOOLS))
    pins["iperf3"]["version"] = "3.17.1"
    proc = _playbook(nodes, tmp_path, "-e", "bench_tools_state=checked",
                     "-e", "bench_tools_bin_dir=/usr/bin",
                     "-e", json.dumps({"bench_tools_pins": pins}))
    assert proc.returncode == 2
    assert "cp1: /usr/bin/iperf3 reports 'iperf 3.12" in proc.stdout
    assert "pinned 3.17.1" in proc.stdout
    # the links cnilab installs are what counts by default, and there are none yet
    proc = _playbook(nodes, tmp_path, "-e", "bench_tools_state=checked")
    assert proc.returncode == 2
    assert "w1: /usr/local/bin/netperf reports" in proc.stdout


def test_unverified_sources_are_refused(nodes: SshNodes, tmp_path: Path) -> None:
    pins = json.loads(json.dumps(TOOLS))
    pins["netperf"]["source"]["sha256"] = ""
    proc = _playbook(nodes, tmp_path, "-e", json.dumps({"bench_tools_pins": pins}))
    assert proc.returncode == 2
    assert "versions/tools.yml: tools.netperf.source needs url and sha256" in proc.stdout
    assert "Fetch the release sources" not in proc.stdout.split("fatal")[0]


def test_os_prep_dry_run_over_ssh_plans_each_node(nodes: SshNodes, tmp_path: Path) -> None:
    """os_prep in check mode on every emulated node: the sysctls, modules and files it
    would set are planned per node over SSH and nothing is written (the kernel and
    packages are this machine's, so only a dry run is honest here)."""
    proc = ansible_playbook(
        "--check", "--diff",
        "-i", str(nodes.inventory(tmp_path / "hosts.yml")), "playbooks/cluster.yml",
        "--tags", "os_prep", "-e", "os_prep_time_service=''",
        "-e", "cnilab_profile=paper-2020")
    assert proc.returncode == 0, proc.stdout[-3000:]
    # one diff per node
    assert proc.stdout.count("+net.ipv4.ip_forward = 1") == len(nodes.nodes)
    assert "cp1" in proc.stdout and "w1" in proc.stdout
    for node in nodes.nodes:
        assert not node.path("/etc/sysctl.d/90-cnilab.conf").exists()
        assert not node.path("/etc/modules-load.d/90-cnilab.conf").exists()
