"""`cnilab doctor --inventory` and `cnilab cluster reset|collect|up` over real SSH against
emulated nodes (network namespaces with their own sshd). `cluster up` cannot provision
here (no systemd, no second kernel): it is exercised up to its preflight refusal."""

from __future__ import annotations

import json
import os
import sys
import time
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
    proc = cli("doctor", "--inventory", inventory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for node in nodes.nodes:
        assert f"ok    {node.name:<12} node_ip    {node.ip} on eth0, mtu 1500" in proc.stdout
        assert f"ok    {node.name:<12} os         debian 12" in proc.stdout
        assert f"ok    {node.name:<12} ssh        root@{node.ip}:22" in proc.stdout
        assert f"ok    {node.name:<12} clock      skew " in proc.stdout
        assert f"ok    {node.name:<12} cgroup     v2" in proc.stdout
        assert f"ok    {node.name:<12} iproute2   JSON routes" in proc.stdout
    assert "ok    all          mtu        1500 on every host" in proc.stdout
    assert "every host passed" in proc.stdout


@pytest.mark.root
def test_doctor_judges_each_os_image_for_the_paper_profile(tmp_path: Path, cli: Any) -> None:
    """The paper profile's kubelet (1.18) runs on cgroup v1 only (kubernetes/kubernetes
    #90710); ansible-core 2.19 runs modules with Python >= 3.8 only (module_utils/basic.py
    _PY_MIN); cnilab reads routes as JSON (iproute2 >= 4.17). Ubuntu 20.04 has all three;
    Ubuntu 18.04 (the paper's OS) none but the first; Debian 12 boots cgroup v2."""
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and sshd")
    images = {"focal": "ubuntu-20.04", "bionic": "ubuntu-18.04", "bookworm": "debian-12"}
    with SshNodes(list(images), images=images, tag=1) as emulated:
        proc = cli("doctor", "--inventory", str(emulated.inventory(tmp_path / "hosts.yml")),
                   "--profile", "paper-2020")
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    focal = [line for line in out.splitlines() if line[6:].startswith("focal ")]
    assert focal and all(line.startswith("ok  ") for line in focal), out
    assert "ok    focal        os         ubuntu 20.04" in out
    assert "ok    focal        python     3.8" in out
    assert "ok    focal        cgroup     v1" in out
    assert "FAIL  bionic       python     3.6 (the pinned ansible-core runs modules only with " \
        "python3 >= 3.8 on the node)" in out
    assert "FAIL  bionic       iproute2   `ip -j route` prints no JSON (iproute2 >= 4.17 " \
        "needed" in out
    assert "FAIL  bionic       os         ubuntu 18.04 is not one the roles are written for" in out
    assert "FAIL  bookworm     cgroup     v2: this profile's kubelet needs cgroup v1; boot " \
        "with systemd.unified_cgroup_hierarchy=0 on the kernel command line" in out
    assert "4 problem(s)" in out


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
        proc = cli("doctor", "--inventory", str(_inventory(nodes, tmp_path, edit)))
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
        return Probe(parse_probe(f"os=ubuntu 20.04\nkernel=5.4.0\npython=3.8\ncgroup=v1\n"
                                 f"routes_json=[\naddr={addr}\nclock={now + offset}\n"),
                     now, now + 0.01)

    checks = preflight(load_inventory(inventory), cgroup_required="1", probe=probe)
    by_host = {(c.host, c.subject): c for c in checks}
    assert by_host[("cp1", "clock")].ok
    assert not by_host[("w1", "clock")].ok
    assert "more than 0.5 s" in by_host[("w1", "clock")].detail
    assert by_host[("w1", "python")].ok and by_host[("w1", "os")].ok   # the paper profile's OS
    assert by_host[("w1", "cgroup")].ok                                # 1.18 runs on v1
    strict = preflight(load_inventory(inventory), cgroup_required="2", probe=probe)
    assert any(c.subject == "cgroup" and not c.ok and "needs cgroup v2; boot with "
               "systemd.unified_cgroup_hierarchy=1" in c.detail for c in strict)


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
               "--out", str(out), "--quiet")
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
    assert proc.returncode == 2      # --reboot is an option of `cluster reset` alone
    assert proc.stderr.strip() == "cnilab cluster up: unrecognized arguments: --reboot " \
        "(see `cnilab cluster up --help`)"
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
    assert proc.returncode == 2 and proc.stderr.startswith(
        "cnilab switch: argument --cni: invalid choice: 'nope' (choose from 'flannel', ")
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli("deploy", "--inventory", str(inventory), "--cni", "weave", "--mode", "fastdp",
               "--policy", "never", "--out", str(out))
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "cnilab: --policy never: weave's policy engine cannot be switched off; it takes "
        "--policy on or off")
    assert not out.exists()


def _checked_inventory(emulated: SshNodes, path: Path) -> Path:
    """The emulated nodes' inventory without their opt-out: host keys are checked."""
    data = yaml.safe_load(emulated.inventory(path).read_text())
    data["all"]["vars"] = {"ansible_ssh_common_args":
                           "-o ControlMaster=auto -o ControlPersist=30s "
                           f"-o ControlPath={emulated.control_path_dir / '%C'}"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.root
def test_host_keys_are_recorded_at_first_contact_and_a_changed_one_is_refused(
        tmp_path: Path, cli: Any) -> None:
    """Trust on first use, for paramiko (preflight, benchmark sessions) and Ansible's
    OpenSSH alike; a reinstalled machine (a new node set at the same addresses, with new
    host keys) is refused with one line per host, before any playbook runs."""
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and sshd")
    inventory = tmp_path / "testbed" / "hosts.yml"
    inventory.parent.mkdir()
    known = inventory.parent / "known_hosts"
    with SshNodes(["cp1", "w1"], images={"cp1": "debian-12", "w1": "debian-12"},
                  tag=3) as emulated:
        _checked_inventory(emulated, inventory)
        first = cli("doctor", "--inventory", str(inventory))
        assert first.returncode == 0, first.stdout + first.stderr
        recorded = known.read_text()
        hosts = sorted(line.split()[0] for line in recorded.splitlines())
        assert hosts == sorted(n.ip for n in emulated.nodes), recorded
        for node in emulated.nodes:     # the very key each sshd serves
            served = (node.scratch / "files" / "host_key.pub").read_text().split()[:2]
            assert f"{node.ip} {' '.join(served)}" in recorded
        again = cli("doctor", "--inventory", str(inventory))
        assert again.returncode == 0 and known.read_text() == recorded
        # Ansible's OpenSSH checks against the same file (accept-new for new hosts only)
        collected = cli("cluster", "collect", "--inventory", str(inventory),
                        "--out", str(tmp_path / "records"), "--quiet")
        assert collected.returncode == 0, collected.stdout + collected.stderr
        assert known.read_text() == recorded
    with SshNodes(["cp1", "w1"], images={"cp1": "debian-12", "w1": "debian-12"},
                  tag=3) as reinstalled:
        _checked_inventory(reinstalled, inventory)
        refused = cli("doctor", "--inventory", str(inventory))
        assert refused.returncode == 1
        for node in reinstalled.nodes:
            assert f"FAIL  {node.name:<12} hostkey    the SSH host key of {node.ip} is not " \
                f"the one recorded in {known}; refusing to connect (if the machine was " \
                f"reinstalled, remove its key: ssh-keygen -R '{node.ip}' -f {known})" \
                in refused.stdout, refused.stdout
        blocked = cli("cluster", "collect", "--inventory", str(inventory),
                      "--out", str(tmp_path / "blocked"), "--quiet")
        assert blocked.returncode == 1
        lines = blocked.stderr.strip().splitlines()
        assert lines[-2].startswith("cnilab: cp1: the SSH host key of "), lines
        assert lines[-1].startswith("w1: the SSH host key of "), lines
        (directory,) = (tmp_path / "blocked").iterdir()
        assert not (directory / "ansible").exists()          # no playbook ran
        assert known.read_text() == recorded                  # nothing re-recorded


@pytest.mark.root
def test_a_mode_switch_inside_a_run_keeps_the_run_bar(nodes: SshNodes, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster operation on its own shows a bar over its playbooks; inside a study (a
    mode switch) its task lines go through the run's display and the run's count is left
    alone. Real `collect` playbooks over the emulated nodes."""
    import io

    from cnilab.cluster import operations
    from cnilab.progress import Display

    inventory = _inventory(nodes, tmp_path)
    stream = io.StringIO()
    run_display = Display(stream)
    run_display.start(10, done=4)
    operations.run(operations.prepare("collect", inventory, "current", tmp_path / "a"),
                   display=run_display)
    assert run_display._total == 10 and run_display._done == 4
    assert "TASK " in stream.getvalue() and "progress: " not in stream.getvalue()
    own = io.StringIO()
    monkeypatch.setattr(sys, "stderr", own)
    operations.run(operations.prepare("collect", inventory, "current", tmp_path / "b"))
    playbooks = len(operations.PLAYBOOKS["collect"])
    assert f"progress: {playbooks}/{playbooks} (100 %)" in own.getvalue()
