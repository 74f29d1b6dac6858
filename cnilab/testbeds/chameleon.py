"""``cnilab inventory chameleon``: an inventory from a Chameleon (OpenStack) server list.

Input is what the OpenStack tools report, in either shape:

- the CLI's ``openstack server list --long -f json`` (or ``server show -f json``):
  ``Name`` and ``Networks`` as a mapping ``{network: [addresses]}`` or, from older
  clients, a string ``"net=addr, addr; net2=addr"``;
- openstacksdk's server records (``name`` and ``addresses``:
  ``{network: [{"addr": ..., "version": 4, "OS-EXT-IPS:type": "fixed"|"floating"}]}``),
  which is also what cnilab reads itself when no file is given;
- the Nova API's own reply, ``{"servers": [...]}`` of such records.

A server that is not ACTIVE (ERROR, BUILD, SHUTOFF, ...) or has no address is left out
with one line naming it and its status, so one failed reservation does not block an
inventory of the others.

node_ip is the node's fixed address on the experiment network (``--network``); Ansible
reaches the node by its floating IP when it has one (Chameleon bare metal usually gets
one on the shared network), else by node_ip. ``cc`` is the user of Chameleon's images.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnilab.errors import InputError
from cnilab.inventory import Generated, grouped_inventory

DEFAULT_USER = "cc"


@dataclass(frozen=True)
class Server:
    name: str
    # network -> [(address, kind)], kind fixed | floating | "" (unknown)
    networks: dict[str, list[tuple[str, str]]]
    status: str = ""          # Nova's status (ACTIVE, ERROR, ...), "" when not given


def _ipv4(address: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address)
    except ValueError:
        return False


def _networks(record: dict[str, Any], source: str) -> dict[str, list[tuple[str, str]]]:
    raw = record.get("addresses", record.get("Networks", record.get("networks")))
    found: dict[str, list[tuple[str, str]]] = {}
    if isinstance(raw, str):            # "net=10.0.0.5, 129.114.0.9; net2=..."
        for part in filter(None, (p.strip() for p in raw.split(";"))):
            network, _, addresses = part.partition("=")
            found[network.strip()] = [(a.strip(), "") for a in addresses.split(",")]
    elif isinstance(raw, dict):
        for network, entries in raw.items():
            items = entries if isinstance(entries, list) else [entries]
            found[str(network)] = [
                (str(e.get("addr", "")), str(e.get("OS-EXT-IPS:type", "")))
                if isinstance(e, dict) else (str(e), "") for e in items]
    else:
        raise InputError(f"{source}: server {record.get('name') or record.get('Name')} "
                         "has no addresses/Networks")
    return {n: [(a, k) for a, k in v if _ipv4(a)] for n, v in found.items()}


def _has_addresses(record: dict[str, Any]) -> bool:
    raw = record.get("addresses", record.get("Networks", record.get("networks")))
    return bool(raw)


def parse_servers(data: Any, source: str) -> tuple[list[Server], list[str]]:
    """(usable servers, one line per server left out and why)."""
    if isinstance(data, dict) and isinstance(data.get("servers"), list):
        data = data["servers"]                      # the Nova API's reply
    records = data if isinstance(data, list) else [data]
    servers, left_out = [], []
    for record in records:
        if not isinstance(record, dict):
            raise InputError(f"{source}: expected server records (JSON objects)")
        name = record.get("name", record.get("Name"))
        if not name:
            raise InputError(f"{source}: a server record has no name")
        status = str(record.get("status", record.get("Status", "")) or "")
        if status and status.upper() != "ACTIVE":
            left_out.append(f"{name}: status {status}, not ACTIVE")
        elif not _has_addresses(record):
            left_out.append(f"{name}: no addresses{f' (status {status})' if status else ''}")
        else:
            servers.append(Server(str(name), _networks(record, source), status))
    if not servers and not left_out:
        raise InputError(f"{source}: no servers")
    return servers, left_out


def _addresses_of(server: Server, network: str | None, source: str) -> tuple[str, str]:
    """(node_ip, management address)."""
    if network is None:
        if len(server.networks) != 1:
            raise InputError(f"{source}: server {server.name} is on "
                             f"{', '.join(sorted(server.networks)) or 'no network'}; pass "
                             "--network NAME (the experiment network)")
        network = next(iter(server.networks))
    if network not in server.networks:
        raise InputError(f"{source}: server {server.name} is not on network {network} "
                         f"({', '.join(sorted(server.networks))})")
    fixed = [a for a, kind in _classified(server.networks[network]) if kind == "fixed"]
    floating = [a for entries in server.networks.values()
                for a, kind in _classified(entries) if kind == "floating"]
    if not fixed:
        raise InputError(f"{source}: server {server.name} has no fixed IPv4 on {network}")
    return fixed[0], (floating[0] if floating else fixed[0])


def _classified(entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Addresses with their kind; the CLI's forms do not say which address floats, and
    list the fixed address first, the floating ones after it."""
    if any(kind for _, kind in entries):
        return entries
    return [(a, "fixed" if i == 0 else "floating") for i, (a, _) in enumerate(entries)]


def chameleon_inventory(data: Any, source: str, network: str | None = None,
                        prefix: str | None = None, control_plane: str | None = None,
                        user: str = DEFAULT_USER, key_file: str | None = None,
                        ) -> Generated:
    found, skipped = parse_servers(data, source)
    servers = sorted((s for s in found if prefix is None or s.name.startswith(prefix)),
                     key=lambda s: s.name)
    left_out = [line for line in skipped
                if prefix is None or line.startswith(prefix)]
    if not servers:
        raise InputError(f"{source}: no usable server"
                         f"{f' named {prefix}*' if prefix else ''}"
                         f"{' (' + '; '.join(left_out) + ')' if left_out else ''}")

    def host(server: Server) -> dict[str, Any]:
        node_ip, management = _addresses_of(server, network, source)
        entry: dict[str, Any] = {"ansible_host": management, "ansible_user": user,
                                 "node_ip": node_ip}
        if key_file:
            entry["ansible_ssh_private_key_file"] = key_file
        return entry

    where = f"{source}{f' (servers named {prefix}*)' if prefix else ''}"
    return Generated(grouped_inventory({s.name: host(s) for s in servers}, control_plane,
                                       where), left_out)


def load_server_list(path: Path | None) -> tuple[Any, str]:
    """(server records, where they came from): a JSON file, or openstacksdk when none."""
    if path is not None:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        try:
            return json.loads(path.read_text(encoding="utf-8")), str(path)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: not JSON ({exc.msg}); give the output of "
                             "`openstack server list --long -f json`") from None
    try:
        import openstack  # type: ignore[import-not-found]
    except ImportError:
        raise InputError("no server list given and openstacksdk is not installed: pass the "
                         "JSON of `openstack server list --long -f json`, or `pip install "
                         "openstacksdk` and source your Chameleon openrc") from None
    connection = openstack.connect()
    return [{"name": s.name, "status": s.status, "addresses": s.addresses}
            for s in connection.compute.servers()], "openstack (openstacksdk)"
