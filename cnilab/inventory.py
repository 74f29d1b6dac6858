"""Cluster inventories: validation with FILE:LINE errors, and the Vagrant inventory writer.

Every real-cluster path (bare metal, Vagrant, CloudLab, Chameleon) ends in the
same Ansible inventory shape:

    all:
      vars: {ansible_user: ..., ...}
      children:
        control_plane: {hosts: {NAME: {ansible_host: ..., node_ip: ...}}}
        workers:       {hosts: {NAME: {...}, ...}}

``node_ip`` is the one address per host that drives the kubelet node IP, the
API server advertise address and every CNI's interface selection; it must not
fall inside the pod or service CIDR (the failure mode of Calico's default
192.168.0.0/16 pool on 192.168 node networks).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cnilab import paths
from cnilab.errors import InputError, SpecError
from cnilab.network import POD_CIDR, SERVICE_CIDR
from cnilab.rundir import atomic_write_text
from cnilab.yamlpos import PosDict, line_of, load_file, load_text

GROUPS = ("control_plane", "workers")
RESERVED = {"pod CIDR": ipaddress.ip_network(POD_CIDR),
            "service CIDR": ipaddress.ip_network(SERVICE_CIDR)}


@dataclass(frozen=True)
class Node:
    name: str
    group: str
    node_ip: str
    vars: dict[str, Any]      # effective: all.vars, then the group's vars, then the host's
    inventory: str = ""       # the file it was read from

    @property
    def address(self) -> str:
        """How Ansible (and the preflight) reach the host."""
        return str(self.vars.get("ansible_host", self.name))

    @property
    def port(self) -> int:
        return int(self.vars.get("ansible_port", 22))

    @property
    def known_hosts(self) -> Path | None:
        """The file its SSH host key is checked against, None when the inventory opts
        out (cnilab.cluster.hostkeys)."""
        from cnilab.cluster.hostkeys import checks_host_keys, known_hosts_file

        if not self.inventory or not checks_host_keys(self.vars):
            return None
        return known_hosts_file(Path(self.inventory))


def node_ip_problem(name: str, ip: ipaddress.IPv4Address, seen: dict[str, str]) -> str | None:
    """What is wrong with host ``name``'s node_ip (a reserved range, another host's),
    else None; ``seen`` (node_ip -> host) is updated."""
    for label, net in RESERVED.items():
        if ip in net:
            return (f"host '{name}': node_ip {ip} lies in the {label} {net}; pick a node "
                    "network outside it")
    if str(ip) in seen:
        return f"host '{name}': node_ip {ip} is also {seen[str(ip)]}'s"
    seen[str(ip)] = name
    return None


def _mapping(value: Any, where: Any, key: str | None, path: str, name: str) -> PosDict:
    if not isinstance(value, PosDict):
        raise SpecError(path, line_of(where, key), f"'{name}' must be a mapping")
    return value


def parse_inventory(data: Any, path: str) -> list[Node]:
    """Validate an inventory; the first problem raises SpecError (FILE:LINE: message)."""
    top = _mapping(data, data, None, path, "inventory")
    if "all" not in top:
        raise SpecError(path, line_of(top) or 1, "an inventory needs a top-level 'all'")
    everything = _mapping(top["all"], top, "all", path, "all")
    children = _mapping(everything.get("children"), everything, "children", path,
                        "all.children")
    nodes: list[Node] = []
    seen_ips: dict[str, str] = {}
    for group in GROUPS:
        if group not in children:
            raise SpecError(path, line_of(children), f"all.children needs a '{group}' group")
        hosts = _mapping(_mapping(children[group], children, group, path,
                                  f"all.children.{group}").get("hosts"),
                         children[group], "hosts", path, f"{group}.hosts")
        if not hosts:
            raise SpecError(path, line_of(children, group), f"'{group}' has no hosts")
        for name, host_vars in hosts.items():
            hv = _mapping(host_vars, hosts, name, path, f"{group}.hosts.{name}")
            if "node_ip" not in hv:
                raise SpecError(path, line_of(hosts, name), f"host '{name}' has no node_ip (the "
                                "address the cluster uses for this node)")
            try:
                ip = ipaddress.IPv4Address(str(hv["node_ip"]))
            except ValueError:
                raise SpecError(path, line_of(hv, "node_ip"), f"host '{name}': node_ip "
                                f"{hv['node_ip']!r} is not an IPv4 address") from None
            problem = node_ip_problem(str(name), ip, seen_ips)
            if problem:
                raise SpecError(path, line_of(hv, "node_ip"), problem)
            effective = {**dict(everything.get("vars") or {}),
                         **dict(children[group].get("vars") or {}), **dict(hv)}
            nodes.append(Node(str(name), group, str(ip), effective, path))
    if sum(1 for n in nodes if n.group == "control_plane") != 1:
        raise SpecError(path, line_of(children, "control_plane"),
                        "control_plane must have exactly one host (kubeadm init runs there)")
    return nodes


def load_inventory(path: Path) -> list[Node]:
    data, _ = load_file(path)
    return parse_inventory(data, str(path))


# ---------------------------------------------------------------- Vagrant

_HOST_RE = re.compile(r"^Host\s+(\S+)\s*$")


def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    """``vagrant ssh-config`` output -> {machine: {HostName, User, Port, IdentityFile}}."""
    machines: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        match = _HOST_RE.match(line)
        if match:
            current = machines.setdefault(match.group(1), {})
            continue
        parts = line.strip().split(None, 1)
        if current is not None and len(parts) == 2:
            current[parts[0]] = parts[1].strip('"')
    for name, options in machines.items():
        missing = [k for k in ("HostName", "User", "Port", "IdentityFile") if k not in options]
        if missing:
            raise InputError(f"vagrant ssh-config: machine {name} lacks {', '.join(missing)}")
    return machines


def vagrant_inventory(ssh_config: str, network: dict[str, Any]) -> dict[str, Any]:
    """The inventory for the Vagrant lab: SSH details from ``vagrant ssh-config``,
    node_ip from the lab's addressing (inventories/vagrant/network.yml)."""
    machines = parse_ssh_config(ssh_config)
    if "cp1" not in machines:
        raise InputError("vagrant ssh-config lists no cp1: is the Vagrant lab up "
                         "(vagrant up)?")
    prefix, first = str(network["prefix"]), int(network["control_plane_octet"])

    def host(name: str, octet: int) -> dict[str, Any]:
        m = machines[name]
        return {"ansible_host": m["HostName"], "ansible_port": int(m["Port"]),
                "ansible_user": m["User"], "ansible_ssh_private_key_file": m["IdentityFile"],
                "node_ip": f"{prefix}{octet}"}

    workers = sorted((n for n in machines if re.fullmatch(r"w\d+", n)),
                     key=lambda n: int(n[1:]))
    return {"all": {
        # Vagrant VMs are local and get new host keys on every `vagrant up`: no key is
        # recorded for them (the explicit opt-out; cnilab.cluster.hostkeys)
        "vars": {"ansible_become": True, "ansible_host_key_checking": False,
                 "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
                                            "-o UserKnownHostsFile=/dev/null"},
        "children": {
            "control_plane": {"hosts": {"cp1": host("cp1", first)}},
            "workers": {"hosts": {w: host(w, first + int(w[1:])) for w in workers}},
        }}}


def write_vagrant_inventory(ssh_config_file: Path | None = None) -> Path:
    """Write inventories/vagrant/hosts.yml (atomically) from the running Vagrant lab."""
    root = paths.project_root()
    if ssh_config_file is not None:
        text = ssh_config_file.read_text(encoding="utf-8")
    else:
        proc = subprocess.run(["vagrant", "ssh-config"], cwd=root, capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise InputError(f"vagrant ssh-config failed: {proc.stderr.strip()[-300:]}")
        text = proc.stdout
    network = yaml.safe_load((root / "inventories" / "vagrant" / "network.yml").read_text())
    return write_inventory(vagrant_inventory(text, network),
                           root / "inventories" / "vagrant" / "hosts.yml",
                           "Written by `cnilab inventory vagrant` from `vagrant ssh-config`; "
                           "regenerate after `vagrant up`.")


@dataclass
class Generated:
    """An inventory made from a testbed's description, and the machines it left out
    (one line each, naming the machine and why), which the command reports."""

    inventory: dict[str, Any]
    left_out: list[str]


def grouped_inventory(hosts: dict[str, dict[str, Any]], control_plane: str | None,
                      source: str) -> dict[str, Any]:
    """cnilab's inventory shape from per-host entries: ``control_plane`` (the named host,
    else the first) and every other host a worker. Generators share it; what the
    inventory check would refuse is named here against the testbed's own file."""
    names = list(hosts)
    seen: dict[str, str] = {}
    for name, entry in hosts.items():
        problem = node_ip_problem(name, ipaddress.IPv4Address(str(entry["node_ip"])), seen)
        if problem:
            raise InputError(f"{source}: {problem}")
    if len(names) < 2:
        raise InputError(f"{source}: {len(names)} host(s); cnilab needs a control plane and "
                         "at least one worker")
    leader = control_plane or names[0]
    if leader not in hosts:
        raise InputError(f"{source}: --control-plane {leader}: no such host "
                         f"({', '.join(names)})")
    return {"all": {
        "vars": {"ansible_become": True},
        "children": {
            "control_plane": {"hosts": {leader: hosts[leader]}},
            "workers": {"hosts": {n: e for n, e in hosts.items() if n != leader}},
        }}}


def write_inventory(inventory: dict[str, Any], out: Path, origin: str) -> Path:
    """Write a generated inventory atomically, after it passed our own validation (a
    generator bug must not leave a half-valid file where the old one was). A problem is
    named against the file being written, never against a temporary one."""
    body = f"# {origin}\n" + yaml.safe_dump(inventory, sort_keys=False)
    parse_inventory(load_text(body, str(out)), str(out))
    atomic_write_text(out, body)
    return out
