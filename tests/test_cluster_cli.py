"""`cnilab doctor --inventory` and `cnilab cluster reset|collect|up` over real SSH against
emulated nodes (network namespaces with their own sshd). `cluster up` cannot provision
here (no systemd, no second kernel): it is exercised up to its preflight refusal."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_cli import ansible_playbook
from sshnodes import SshNodes

from cnilab.cluster.preflight import Probe, parse_probe, preflight
from cnilab.cluster.ssh import clock_skew
from cnilab.inventory import load_inventory

ROOT = Path(__file__).resolve().parent.parent
# emulated nodes share this machine's kernel, so its cgroup layout is theirs
MACHINE_CGROUP = "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1"


@pytest.fixture(scope="module")
def nodes() -> Iterator[SshNodes]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and sshd")
    with SshNodes(["cp1", "w1", "w2"]) as emulated:
        yield emulated


def _inventory(nodes: SshNodes, tmp_path: Path, edit: Any = None) -> Path:
    path = nodes.inventory(tmp_path / "hosts.yml")
    if edit is not None:
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.root
def test_doctor_inventory_passes_healthy_hosts(nodes: SshNodes, tmp_path: Path,
                                               cli: Any) -> None:
    inventory = str(_inventory(nodes, tmp_path))
    # paper-2020 accepts either cgroup version
    proc = cli("doctor", "--inventory", inventory, "--profile", "paper-2020")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for node in nodes.nodes:
        assert f"ok    {node.name:<12} node_ip    {node.ip} on eth0, mtu 1500" in proc.stdout
        assert f"ok    {node.name:<12} os         debian 12" in proc.stdout
        assert f"ok    {node.name:<12} ssh        root@{node.ip}:22" in proc.stdout
        assert f"ok    {node.name:<12} clock      skew " in proc.stdout
    assert "ok    all          mtu        1500 on every host" in proc.stdout
    assert "every host passed" in proc.stdout
    # the current profile's kubelet needs cgroup v2: judged on what the hosts really have
    current = cli("doctor", "--inventory", inventory)
    line = f"{'ok  ' if MACHINE_CGROUP == 'v2' else 'FAIL'}  cp1          cgroup     " \
        f"{MACHINE_CGROUP}"
    assert line in current.stdout, current.stdout
    assert current.returncode == (0 if MACHINE_CGROUP == "v2" else 1)


@pytest.mark.root
def test_doctor_inventory_names_each_problem(nodes: SshNodes, tmp_path: Path,
                                            cli: Any) -> None:
    def edit(data: dict[str, Any]) -> None:
        workers = data["all"]["children"]["workers"]["hosts"]
        workers["w2"]["node_ip"] = "10.251.7.200"
        workers["ghost"] = {**workers["w1"], "ansible_host": "10.251.7.99",
                            "node_ip": "10.251.7.99"}

    nodes.nodes[1].exec("ip", "link", "set", "eth0", "mtu", "1400")
    try:
        proc = cli("doctor", "--inventory", str(_inventory(nodes, tmp_path, edit)),
                   "--profile", "paper-2020")
    finally:
        nodes.nodes[1].exec("ip", "link", "set", "eth0", "mtu", "1500")
    assert proc.returncode == 1
    out = proc.stdout
    assert "FAIL  w2           node_ip    10.251.7.200 is on no interface of this host" in out
    assert "FAIL  ghost        ssh        root@10.251.7.99:22 unreachable:" in out
    assert "FAIL  all          mtu        node_ip interfaces differ in MTU (cp1 1500, w1 1400)" \
        in out
    assert "3 problem(s)" in out


def test_clock_skew_is_judged_from_the_round_trip_midpoint(tmp_path: Path) -> None:
    assert clock_skew(100.6, 100.0, 101.0) == pytest.approx(0.1)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "control_plane": {"hosts": {"cp1": {"node_ip": "10.0.0.1"}}},
        "workers": {"hosts": {"w1": {"node_ip": "10.0.0.2"}}}}}}))
    addr = json.dumps([{"ifname": "eth0", "mtu": 9000, "addr_info": [{"local": "10.0.0.1"}]},
                       {"ifname": "eth1", "mtu": 9000, "addr_info": [{"local": "10.0.0.2"}]}])

    def probe(node: Any) -> Probe:
        # a stand-in for SSH: one host's clock is 3 s ahead (skew cannot be made here)
        now = time.time()
        offset = 3.0 if node.name == "w1" else 0.0
        return Probe(parse_probe(f"os=ubuntu 18.04\nkernel=4.15.0\npython=3.6\ncgroup=v1\n"
                                 f"addr={addr}\nclock={now + offset}\n"), now, now + 0.01)

    checks = preflight(load_inventory(inventory), cgroup_required="any", probe=probe)
    by_host = {(c.host, c.subject): c for c in checks}
    assert by_host[("cp1", "clock")].ok
    assert not by_host[("w1", "clock")].ok
    assert "more than 0.5 s" in by_host[("w1", "clock")].detail
    assert by_host[("w1", "python")].ok and by_host[("w1", "os")].ok   # the paper's userland
    assert by_host[("w1", "cgroup")].ok                                # 1.18 runs on v1
    strict = preflight(load_inventory(inventory), cgroup_required="2", probe=probe)
    assert any(c.subject == "cgroup" and not c.ok and "needs cgroup v2" in c.detail
               for c in strict)


@pytest.mark.root
def test_cluster_reset_and_collect_write_a_record(nodes: SshNodes, tmp_path: Path,
                                                  cli: Any) -> None:
    inventory = _inventory(nodes, tmp_path)
    record = ansible_playbook(
        "-i", str(inventory),
        "playbooks/cluster.yml", "--tags", "node_reset")
    assert record.returncode == 0, record.stdout[-2000:]
    nodes.nodes[2].exec("sh", "-c", "ip link add cni0 type bridge && ipset create cali40 hash:net")
    out = tmp_path / "records"
    proc = cli("cluster", "reset", "--inventory", str(inventory), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (directory,) = out.iterdir()
    assert directory.name.startswith("cluster-reset-") and str(directory) in proc.stdout
    operation = json.loads((directory / "operation.json").read_text())
    assert operation["status"] == "successful" and operation["hosts"] == ["cp1", "w1", "w2"]
    w2 = (directory / "node-reset" / "w2.txt").read_text()
    assert "ip link del cni0" in w2 and "ipset destroy cali40" in w2
    assert "# differences remaining (0):" in w2
    assert (directory / "inventory.yml").read_text() == inventory.read_text()
    assert list((directory / "ansible").glob("artifacts/*/stdout"))

    proc = cli("cluster", "collect", "--inventory", str(inventory), "--out", str(out),
               "--quiet")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    collected = next(d for d in out.iterdir() if d.name.startswith("cluster-collect-"))
    for node in nodes.nodes:
        facts = json.loads((collected / "nodes" / node.name / "facts.json").read_text())
        assert facts["node_nic"]["name"] == "eth0"


@pytest.mark.root
def test_cluster_up_stops_at_a_failed_preflight(nodes: SshNodes, tmp_path: Path,
                                               cli: Any) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["all"]["children"]["workers"]["hosts"]["w1"]["ansible_host"] = "10.251.7.98"

    out = tmp_path / "records"
    proc = cli("cluster", "up", "--inventory", str(_inventory(nodes, tmp_path, edit)),
               "--profile", "paper-2020", "--out", str(out), "--quiet")
    assert proc.returncode == 1
    assert "preflight failed (nothing was changed on the hosts)" in proc.stderr
    assert "FAIL  w1           ssh        root@10.251.7.98:22 unreachable" in proc.stderr
    (directory,) = out.iterdir()
    assert json.loads((directory / "operation.json").read_text())["status"] == "failed"
    assert "FAIL  w1" in (directory / "preflight.txt").read_text()
    assert "ok    cp1          ssh" in (directory / "preflight.txt").read_text()
    assert not (directory / "ansible").exists()          # no playbook ran


def test_cluster_refuses_bad_input_and_writes_nothing(tmp_path: Path, cli: Any) -> None:
    bad = tmp_path / "hosts.yml"
    bad.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
                   "          ansible_host: 10.0.0.1\n    workers:\n      hosts:\n"
                   "        w1: {node_ip: 10.0.0.2}\n")
    out = tmp_path / "records"
    proc = cli("cluster", "up", "--inventory", str(bad), "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{bad}:5: host 'cp1' has no node_ip (the address the " \
        "cluster uses for this node)"
    assert not out.exists()
    good = tmp_path / "good.yml"
    good.write_text(bad.read_text().replace("ansible_host: 10.0.0.1", "node_ip: 10.0.0.1"))
    proc = cli("cluster", "reset", "--inventory", str(good), "--profile", "k8s-1.10",
               "--out", str(out))
    assert proc.returncode == 2
    assert "--profile k8s-1.10: not in versions/kubernetes.yml (current, paper-2020)" in \
        proc.stderr
    assert not out.exists()
    proc = cli("cluster", "collect", "--inventory", str(tmp_path / "none.yml"))
    assert proc.returncode == 2 and "no such inventory file" in proc.stderr
    proc = cli("cluster", "up", "--reboot", "--inventory", str(good), "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "cnilab: --reboot belongs to `cnilab cluster reset`"
    assert not out.exists()


def test_deploy_and_switch_refuse_what_cannot_be_deployed(tmp_path: Path, cli: Any) -> None:
    inventory = ROOT / "inventories" / "example-baremetal" / "hosts.yml"
    out = tmp_path / "records"
    proc = cli("deploy", "--inventory", str(inventory), "--cni", "flannel", "--mode", "ipip",
               "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "cnilab: --mode ipip: flannel modes are vxlan, host-gw"
    proc = cli("switch", "--inventory", str(inventory), "--cni", "nope", "--mode", "x",
               "--out", str(out))
    assert proc.returncode == 2 and "real-cluster support exists for" in proc.stderr
    assert not out.exists()
