"""``cnilab inventory cloudlab MANIFEST.xml``: an inventory from a CloudLab manifest RSpec.

The manifest (the experiment page's "Manifest" tab, or ``geni-get manifest`` on a node)
names, per node, the login (host name, port, one entry per project member), and the
addresses of its experiment interfaces. The login host is how Ansible reaches the node
(control network); the experiment LAN address is the node_ip, as in the paper's setup
where benchmark traffic crosses the experiment LAN and not the control network.

A manifest is recognised by what it holds (nodes with a sliver_id or a login), not by
the root's ``type`` attribute: the portal's manifests say ``type="request"`` too. Nodes
that cannot be cluster nodes are left out and named: storage nodes (sliver type
``emulab-blockstore``) and nodes with no IPv4 address on any experiment interface (a
switch, a node on no LAN).
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnilab.errors import InputError
from cnilab.inventory import Generated, grouped_inventory

# sliver types of nodes that hold storage, not an OS the cluster can run on
STORAGE_SLIVERS = ("emulab-blockstore",)


@dataclass(frozen=True)
class ManifestNode:
    name: str
    logins: list[tuple[str, int, str]]       # (hostname, port, username)
    addresses: list[tuple[str, str]]          # (interface client_id, IPv4)
    sliver_type: str = ""
    provisioned: bool = False                 # a sliver_id: the testbed allocated it


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_manifest(text: str, source: str) -> list[ManifestNode]:
    """The nodes of a manifest RSpec, in document order."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"{source}: not an XML manifest ({exc})") from None
    if _local(root.tag) != "rspec":
        raise InputError(f"{source}: the root element is <{_local(root.tag)}>, "
                         "a manifest RSpec has <rspec>")
    nodes = []
    for node in (e for e in root if _local(e.tag) == "node"):
        name = node.get("client_id") or ""
        logins = [(e.get("hostname", ""), int(e.get("port", "22")), e.get("username", ""))
                  for e in node.iter() if _local(e.tag) == "login"]
        addresses = [(iface.get("client_id", ""), ip.get("address", ""))
                     for iface in node if _local(iface.tag) == "interface"
                     for ip in iface if _local(ip.tag) == "ip"
                     and ip.get("type", "ipv4") == "ipv4"]
        sliver = next((e.get("name", "") for e in node if _local(e.tag) == "sliver_type"), "")
        nodes.append(ManifestNode(name, logins, addresses, sliver,
                                  provisioned=bool(node.get("sliver_id"))))
    if not nodes:
        raise InputError(f"{source}: the manifest has no <node>: is the experiment ready?")
    if not any(n.provisioned or n.logins for n in nodes):
        raise InputError(f"{source}: no node has a sliver_id or a login: this is a request "
                         "RSpec; give the manifest of the running experiment (its Manifest "
                         "tab)")
    return nodes


def _left_out(node: ManifestNode) -> str | None:
    """Why a node cannot be a cluster node, or None."""
    if node.sliver_type in STORAGE_SLIVERS:
        return f"{node.name}: a storage node ({node.sliver_type}), not a machine to run on"
    if not node.addresses:
        return f"{node.name}: no IPv4 address on any experiment interface (not on a LAN)"
    return None


def _node_ip(node: ManifestNode, source: str, lan: str | None) -> str:
    candidates = [(iface, ip) for iface, ip in node.addresses
                  if lan is None or ipaddress.IPv4Address(ip) in ipaddress.ip_network(lan)]
    if len(candidates) != 1:
        found = ", ".join(f"{i} {a}" for i, a in node.addresses) or "none"
        hint = "pass --lan CIDR to choose the experiment LAN" if candidates else \
            "does the profile give the node an interface on a LAN?"
        raise InputError(f"{source}: node {node.name} has {len(candidates)} experiment "
                         f"addresses{f' in {lan}' if lan else ''} (found: {found}); {hint}")
    return candidates[0][1]


def cloudlab_inventory(text: str, source: str, user: str | None = None,
                       control_plane: str | None = None, lan: str | None = None,
                       key_file: str | None = None) -> Generated:
    nodes = parse_manifest(text, source)
    left_out = {n.name: why for n in nodes for why in [_left_out(n)] if why}

    def host(node: ManifestNode) -> dict[str, Any]:
        if not node.logins:
            raise InputError(f"{source}: node {node.name} has no <login> (the manifest of a "
                             "running experiment lists one per member)")
        users = sorted({u for _, _, u in node.logins if u})
        nameless = [login for login in node.logins if not login[2]]
        if user is None and len(users) > 1:
            raise InputError(f"{source}: node {node.name} has logins for {', '.join(users)}; "
                             "pass --user NAME")
        chosen = user or (users[0] if users else None)
        if chosen is None:
            raise InputError(f"{source}: node {node.name} has a <login> to {nameless[0][0]} "
                             "without a username; pass --user NAME")
        login = next((lg for lg in node.logins if lg[2] == chosen), None)
        if login is None and nameless:
            login = (nameless[0][0], nameless[0][1], chosen)    # the host, as --user
        if login is None:
            raise InputError(f"{source}: node {node.name} has no login for user {chosen} "
                             f"({', '.join(users)})")
        entry: dict[str, Any] = {"ansible_host": login[0], "ansible_port": login[1],
                                 "ansible_user": login[2],
                                 "node_ip": _node_ip(node, source, lan)}
        if key_file:
            entry["ansible_ssh_private_key_file"] = key_file
        return entry

    hosts = {n.name: host(n) for n in nodes if n.name not in left_out}
    return Generated(grouped_inventory(hosts, control_plane, source), list(left_out.values()))


def read_manifest(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"{path}: no such manifest file")
    return path.read_text(encoding="utf-8")
