"""Real-cluster inventories: validation errors with FILE:LINE, the Vagrant inventory from
`vagrant ssh-config`, and the Vagrantfile itself (`vagrant validate`; no hypervisor here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cnilab.errors import InputError, SpecError
from cnilab.inventory import load_inventory, parse_inventory, parse_ssh_config, vagrant_inventory
from cnilab.yamlpos import load_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "inventories" / "example-baremetal" / "hosts.yml"
# Written in the format `vagrant ssh-config` prints for vagrant-libvirt machines (no VM can
# run on the build machines, so this is not a captured output).
SSH_CONFIG = (ROOT / "tests" / "data" / "vagrant" / "ssh-config-libvirt.txt").read_text()


def test_example_inventory_is_valid() -> None:
    nodes = load_inventory(EXAMPLE)
    assert [(n.name, n.group, n.node_ip) for n in nodes] == [
        ("node0", "control_plane", "10.10.1.1"), ("node1", "workers", "10.10.1.2"),
        ("node2", "workers", "10.10.1.3")]


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("node_ip: 10.10.1.2\n", "node_ip: 10.244.3.2\n", 30,
     "host 'node1': node_ip 10.244.3.2 lies in the pod CIDR 10.244.0.0/16"),
    ("node_ip: 10.10.1.3\n", "node_ip: 10.96.0.10\n", 33, "lies in the service CIDR"),
    ("node_ip: 10.10.1.3\n", "node_ip: 10.10.1.2\n", 33,
     "host 'node2': node_ip 10.10.1.2 is also node1's"),
    ("node_ip: 10.10.1.3\n", "node_ip: node-two\n", 33, "is not an IPv4 address"),
    ("          node_ip: 10.10.1.1 ", "          nodeip: 10.10.1.1 ", 23,
     "host 'node0' has no node_ip"),
    ("    workers:", "    worker:", 21, "all.children needs a 'workers' group"),
])
def test_bad_inventories_name_the_line(old: str, new: str, line: int, words: str) -> None:
    text = EXAMPLE.read_text()
    assert old in text
    with pytest.raises(SpecError) as info:
        parse_inventory(load_text(text.replace(old, new), "inv.yml"), "inv.yml")
    assert str(info.value).startswith(f"inv.yml:{line}: "), str(info.value)
    assert words in str(info.value)


def test_two_control_planes_refused() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["all"]["children"]["control_plane"]["hosts"]["nodeX"] = {"node_ip": "10.10.1.9"}
    with pytest.raises(SpecError, match="control_plane must have exactly one host"):
        parse_inventory(load_text(yaml.safe_dump(data), "inv.yml"), "inv.yml")


def test_vagrant_inventory_from_ssh_config() -> None:
    network = yaml.safe_load((ROOT / "inventories" / "vagrant" / "network.yml").read_text())
    inventory = vagrant_inventory(SSH_CONFIG, network)
    text = yaml.safe_dump(inventory, sort_keys=False)
    nodes = parse_inventory(load_text(text, "hosts.yml"), "hosts.yml")
    # node_ip comes from the lab's addressing, never from the NAT/management address
    assert [(n.name, n.node_ip, n.vars["ansible_host"]) for n in nodes] == [
        ("cp1", "192.168.56.10", "192.168.121.57"), ("w1", "192.168.56.11", "192.168.121.112"),
        ("w2", "192.168.56.12", "192.168.121.9")]
    assert nodes[0].vars["ansible_ssh_private_key_file"].endswith("/cp1/libvirt/private_key")
    assert nodes[0].vars["ansible_port"] == 22


def test_ssh_config_errors() -> None:
    with pytest.raises(InputError, match="machine cp1 lacks IdentityFile"):
        parse_ssh_config("Host cp1\n  HostName 1.2.3.4\n  User v\n  Port 22\n")
    with pytest.raises(InputError, match="lists no cp1"):
        vagrant_inventory("", {"prefix": "192.168.56.", "control_plane_octet": 10})


def test_inventory_check_cli(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("inventory", "check", str(EXAMPLE))
    assert proc.returncode == 0 and "3 hosts" in proc.stdout
    proc = cli("inventory", "check", str(ROOT / "nope.yml"))
    assert proc.returncode == 2 and "nope.yml: cannot read" in proc.stderr


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed "
                    "(scripts/install-system-deps.sh test installs it)")
@pytest.mark.parametrize(("env", "ok", "words"), [
    ({}, True, "validated successfully"),
    ({"CNILAB_WORKERS": "3", "CNILAB_PROFILE": "paper-2020"}, True, "validated successfully"),
    ({"CNILAB_WORKERS": "many"}, False, 'CNILAB_WORKERS must be an integer >= 1, got "many"'),
    ({"CNILAB_CPUS": "1"}, False, "CNILAB_CPUS must be an integer >= 2"),
    ({"CNILAB_PROFILE": "k8s-1.10"}, False, "CNILAB_PROFILE=k8s-1.10: unknown profile"),
])
def test_vagrantfile_validates(env: dict[str, str], ok: bool, words: str,
                               tmp_path: Path) -> None:
    proc = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "VAGRANT_HOME": str(tmp_path), **env})
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    assert words in proc.stdout + proc.stderr
