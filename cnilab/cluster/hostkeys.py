"""SSH host keys of cluster nodes: trusted on first use, verified ever after.

Why: CloudLab and Chameleon nodes are reached over the internet, and a run hands them
root. ansible-runner turns Ansible's host key checking off unless told otherwise, and a
client that accepts any key would talk to whoever answers at the address. So the first
contact records each node's key in a ``known_hosts`` file beside the inventory, every
later connection (cnilab's own paramiko sessions and Ansible's OpenSSH alike) checks
against it, and a changed key is refused with one line naming the host.

An inventory opts out explicitly with Ansible's own variable,
``ansible_host_key_checking: false`` (Vagrant VMs, emulated nodes), which then governs
both clients.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import paramiko

from cnilab.errors import CnilabError

KNOWN_HOSTS = "known_hosts"
_FALSE = {"false", "no", "off", "0", "n", "f"}


class HostKeyChanged(CnilabError):
    """A node presented another host key than the one recorded for it."""


def known_hosts_file(inventory: Path) -> Path:
    """Where the keys of an inventory's nodes are recorded."""
    return inventory.resolve().parent / KNOWN_HOSTS


def checks_host_keys(host_vars: dict[str, Any]) -> bool:
    """Ansible's ``ansible_host_key_checking`` (true unless the inventory says false)."""
    value = host_vars.get("ansible_host_key_checking",
                          host_vars.get("ansible_ssh_host_key_checking", True))
    return str(value).strip().lower() not in _FALSE


def entry_name(host: str, port: int) -> str:
    """The host field OpenSSH and paramiko use (``[host]:port`` off port 22)."""
    return host if port == 22 else f"[{host}]:{port}"


class RecordOnFirstUse:
    """paramiko missing-host-key policy (paramiko calls only ``missing_host_key``): a
    host with no recorded key gets this one appended to the file (under a lock,
    re-reading it first, so parallel connections and OpenSSH's own appends are never
    lost); a host recorded meanwhile with another key is refused."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            known = paramiko.HostKeys(str(self.path)).lookup(hostname)
            if known is not None and key.get_name() in known:
                if known[key.get_name()] != key:
                    raise paramiko.BadHostKeyException(hostname, key, known[key.get_name()])
                return
            handle.seek(0, os.SEEK_END)
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            handle.flush()
            os.fsync(handle.fileno())
        client.get_host_keys().add(hostname, key.get_name(), key)


def prepare(client: paramiko.SSHClient, known_hosts: Path | None) -> None:
    """Set ``client`` up to check (``known_hosts``) or, opted out, to accept any key."""
    if known_hosts is None:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())   # nothing recorded
        return
    if known_hosts.exists():
        client.get_host_keys().load(str(known_hosts))
    client.set_missing_host_key_policy(RecordOnFirstUse(known_hosts))


def changed_message(node_name: str, host: str, port: int, known_hosts: Path) -> str:
    name = entry_name(host, port)
    return (f"{node_name}: the SSH host key of {name} is not the one recorded in "
            f"{known_hosts}; refusing to connect (if the machine was reinstalled, remove "
            f"its key: ssh-keygen -R '{name}' -f {known_hosts})")


def ansible_environment(known_hosts: Path) -> dict[str, str]:
    """Ansible's OpenSSH connections with the same trust: host key checking on (against
    ansible-runner's default), the inventory's file, new hosts recorded on first use.
    Hosts whose inventory says ``ansible_host_key_checking: false`` keep opting out."""
    return {"ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_EXTRA_ARGS": f"-o UserKnownHostsFile={known_hosts} "
                                      "-o StrictHostKeyChecking=accept-new"}
