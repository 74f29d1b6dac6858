"""A node's network state as a comparable snapshot, the purge back to a baseline, and
the differences that remain.

Why a snapshot and not a list of known CNI objects: switching plugins on the same nodes
is only fair if each plugin starts on the node as it was before any plugin ran.
``kubeadm reset`` leaves interfaces, routes, chains, ipsets, CNI files and BPF state
behind, and every plugin (and version) leaves different ones. So the clean state is
*recorded* once, after OS preparation, and a reset removes whatever is not in that
record, whoever created it. No plugin's names are hard-coded here; the only lists are
the directories and sysctls the role asks to watch.

Two kinds of link cannot be removed with ``ip link del``, so they are removed the way
their owners remove them:

- A tunnel driver creates one *fallback device* in every network namespace when it
  loads (``tunl0`` for ipip, which Calico's IP-in-IP and kube-router's overlay load;
  ``gre0``, ``sit0``, ...: ip_tunnel_init_net, "one, and only one per netns").
  ``ip link del tunl0`` succeeds and leaves it (ip_tunnel_dellink skips the fallback
  device): it goes with its module. The purge unloads the module when nothing uses it;
  when that cannot be (built in, or in use), the device is *kept*: reported as owned by
  the loaded module, not as residue.
- The Open vSwitch ``datapath`` device that Weave's fast datapath creates (kind
  openvswitch) refuses RTNL deletion (EOPNOTSUPP: internal_dev_link_ops has no dellink).
  It is deleted through the ``ovs_datapath`` generic netlink family (OVS_DP_CMD_DEL),
  as ``weave reset`` does (weaveutil delete-datapath, go-odp), which also removes its
  vports (vxlan-6784).

This file runs on the managed nodes (it is shipped by the ``node_state`` module), so it
uses the standard library only and stays compatible with the oldest Python the pinned
ansible-core runs modules with (3.8; ``_PY_MIN`` in its module_utils/basic.py).
"""


import errno
import json
import os
import shutil
import socket
import struct
from typing import Any, Callable, Dict, List, Optional, Tuple

# run(argv) -> (rc, stdout, stderr); the module passes AnsibleModule.run_command
Runner = Callable[[List[str]], Tuple[int, str, str]]

SNAPSHOT_FORMAT = 1
# iptables tables: the default policy of built-in chains that counts as "empty"
_EMPTY_POLICIES = {"ACCEPT", "-"}
_BACKENDS = (("legacy", "v4", "iptables-legacy"), ("legacy", "v6", "ip6tables-legacy"),
             ("nft", "v4", "iptables-nft"), ("nft", "v6", "ip6tables-nft"))


def _json(run: Runner, argv: List[str]) -> Any:
    rc, out, _ = run(argv)
    if rc != 0 or not out.strip():
        return []
    return json.loads(out)


def _have(run: Runner, tool: str) -> bool:
    rc, _, _ = run(["sh", "-c", f"command -v {tool}"])
    return rc == 0


# fallback device -> (its link kind, the module that owns it)
FALLBACK_DEVICES = {
    "tunl0": ("ipip", "ipip"), "gre0": ("gre", "ip_gre"), "gretap0": ("gretap", "ip_gre"),
    "erspan0": ("erspan", "ip_gre"), "sit0": ("sit", "sit"),
    "ip6tnl0": ("ip6tnl", "ip6_tunnel"), "ip6gre0": ("ip6gre", "ip6_gre"),
    "ip_vti0": ("vti", "ip_vti"), "ip6_vti0": ("vti6", "ip6_vti"),
}
OVS_KIND = "openvswitch"


def fallback_module(name: str, link: Dict[str, Any]) -> Optional[str]:
    """The module owning ``name`` if it is a tunnel driver's fallback device."""
    kind, module = FALLBACK_DEVICES.get(name, ("", ""))
    return module if kind and link.get("kind") == kind else None


# --- generic netlink: the Open vSwitch datapath ------------------------------------------

_NETLINK_GENERIC = 16
_GENL_ID_CTRL = 0x10
_CTRL_CMD_GETFAMILY = 3
_CTRL_ATTR_FAMILY_ID = 1
_CTRL_ATTR_FAMILY_NAME = 2
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLMSG_ERROR = 0x2
_OVS_DATAPATH_FAMILY = "ovs_datapath"
_OVS_DATAPATH_VERSION = 2
_OVS_DP_CMD_DEL = 2
_OVS_DP_ATTR_NAME = 1


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _genl_request(sock: socket.socket, family: int, command: int, version: int,
                  body: bytes, flags: int) -> List[Tuple[int, bytes]]:
    """Send one generic netlink request; return (type, payload) of each reply message."""
    header = struct.pack("=BBH", command, version, 0)
    message = struct.pack("=IHHII", 16 + len(header) + len(body), family, flags, 1, 0)
    sock.send(message + header + body)
    replies = []
    data = sock.recv(65536)
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _, _, _ = struct.unpack_from("=IHHII", data, offset)
        replies.append((kind, data[offset + 16:offset + length]))
        offset += (length + 3) & ~3
    return replies


def _netlink_error(payload: bytes) -> int:
    return -struct.unpack_from("=i", payload, 0)[0]


def genl_family_id(name: str) -> Optional[int]:
    """The id of a generic netlink family, or None when the kernel has none by that
    name (its module is not loaded)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_GENERIC) as sock:
        replies = _genl_request(sock, _GENL_ID_CTRL, _CTRL_CMD_GETFAMILY, 1,
                                _attr(_CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0"),
                                _NLM_F_REQUEST)
    for kind, payload in replies:
        if kind == _NLMSG_ERROR:
            code = _netlink_error(payload)
            if code == errno.ENOENT:
                return None
            raise OSError(code, os.strerror(code))
        offset = 4                                  # genlmsghdr
        while offset + 4 <= len(payload):
            length, attr = struct.unpack_from("=HH", payload, offset)
            if attr == _CTRL_ATTR_FAMILY_ID:
                return int(struct.unpack_from("=H", payload, offset + 4)[0])
            offset += (length + 3) & ~3
    return None


def delete_ovs_datapath(name: str) -> Tuple[int, str]:
    """OVS_DP_CMD_DEL for the datapath ``name``: (0, "") or (errno, message)."""
    family = genl_family_id(_OVS_DATAPATH_FAMILY)
    if family is None:
        return errno.ENOENT, ("no ovs_datapath generic netlink family (openvswitch module "
                              "not loaded), so no datapath " + name)
    body = struct.pack("=i", 0) + _attr(_OVS_DP_ATTR_NAME, name.encode() + b"\0")
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_GENERIC) as sock:
        replies = _genl_request(sock, family, _OVS_DP_CMD_DEL, _OVS_DATAPATH_VERSION, body,
                                _NLM_F_REQUEST | _NLM_F_ACK)
    for kind, payload in replies:
        if kind == _NLMSG_ERROR and _netlink_error(payload):
            code = _netlink_error(payload)
            return code, os.strerror(code)
    return 0, ""


def _module_unloadable(module: str, sys_module: str = "/sys/module") -> bool:
    """Loaded as a module (not built in) and used by nothing."""
    try:
        with open(os.path.join(sys_module, module, "refcnt")) as handle:
            return handle.read().strip() == "0"
    except OSError:
        return False          # built in (no refcnt) or not loaded


# --- capture ---------------------------------------------------------------------------

def _links(run: Runner) -> Dict[str, Dict[str, Any]]:
    links = {}
    for link in _json(run, ["ip", "-j", "-d", "link", "show"]):
        kind = (link.get("linkinfo") or {}).get("info_kind") or link.get("link_type", "")
        links[link["ifname"]] = {"kind": kind, "mtu": link.get("mtu"),
                                 "master": link.get("master", "")}
    return links


def _addresses(run: Runner) -> Dict[str, List[str]]:
    """IPv4 and global IPv6 addresses per link (link-local IPv6 comes and goes by itself)."""
    addresses = {}
    for link in _json(run, ["ip", "-j", "addr", "show"]):
        found = sorted("{}/{}".format(a["local"], a["prefixlen"]) for a in link.get("addr_info", [])
                       if a.get("family") == "inet" or
                       (a.get("family") == "inet6" and a.get("scope") == "global"))
        if found:
            addresses[link["ifname"]] = found
    return addresses


def _route_key(route: Dict[str, Any]) -> str:
    parts = [route.get("type", "unicast"), route.get("dst", "")]
    if route.get("gateway"):
        parts += ["via", route["gateway"]]
    if route.get("dev"):
        parts += ["dev", route["dev"]]
    parts += ["table", str(route.get("table", "main"))]
    if route.get("protocol"):
        parts += ["proto", str(route["protocol"])]
    return " ".join(parts)


def _routes(run: Runner) -> List[str]:
    """IPv4 routes of every table but ``local`` (the kernel keeps that one per address)."""
    return sorted({_route_key(r) for r in _json(run, ["ip", "-j", "-4", "route", "show",
                                                       "table", "all"])
                   if str(r.get("table", "main")) != "local"})


def _rules(run: Runner) -> List[str]:
    rc, out, _ = run(["ip", "-4", "rule", "show"])
    return sorted(" ".join(line.split()) for line in out.splitlines() if line.strip()) \
        if rc == 0 else []


def parse_iptables_save(text: str) -> Dict[str, Dict[str, Any]]:
    """``iptables-save`` output -> {table: {"policies": {chain: policy}, "rules": [...]}},
    without counters and comments. Tables with nothing but ACCEPT built-ins are dropped:
    an emptied table and an absent one are the same state."""
    tables: Dict[str, Dict[str, Any]] = {}
    current: Optional[Dict[str, Any]] = None
    name = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            name = line[1:]
            current = {"policies": {}, "rules": []}
        elif line.startswith(":") and current is not None:
            chain, policy = line[1:].split()[:2]
            current["policies"][chain] = policy
        elif line.startswith("-A ") and current is not None:
            current["rules"].append(line)
        elif line == "COMMIT" and current is not None:
            if current["rules"] or any(p not in _EMPTY_POLICIES or not _builtin(c)
                                       for c, p in current["policies"].items()):
                tables[name] = current
            current = None
    return tables


def _builtin(chain: str) -> bool:
    return chain in {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}


def _iptables(run: Runner) -> Dict[str, Dict[str, Any]]:
    found = {}
    for backend, family, tool in _BACKENDS:
        if not _have(run, tool + "-save"):
            continue
        rc, out, _ = run([tool + "-save"])
        if rc == 0:
            found[f"{backend}-{family}"] = parse_iptables_save(out)
    return found


def _nft_tables(run: Runner) -> Optional[List[str]]:
    if not _have(run, "nft"):
        return None
    data = _json(run, ["nft", "-j", "list", "tables"])
    items = data.get("nftables", []) if isinstance(data, dict) else []
    return sorted("{} {}".format(i["table"]["family"], i["table"]["name"])
                  for i in items if "table" in i)


def _ipsets(run: Runner) -> Optional[List[str]]:
    if not _have(run, "ipset"):
        return None
    rc, out, _ = run(["ipset", "list", "-n"])
    return sorted(out.split()) if rc == 0 else []


def _qdiscs(run: Runner) -> List[str]:
    """Attach points of tc eBPF programs (clsact/ingress) per link."""
    qdiscs = _json(run, ["tc", "-j", "qdisc", "show"])
    return sorted(f"{q['kind']} {q['dev']}" for q in qdiscs
                  if q.get("kind") in ("clsact", "ingress"))


def parse_ip_vs(text: str) -> List[str]:
    """IPVS virtual services ("TCP 10.96.0.1:443") from /proc/net/ip_vs: what kube-proxy
    in IPVS mode and kube-router's service proxy leave in the kernel (not a link, a
    rule or a file, so nothing else here would see it)."""
    services = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("TCP", "UDP", "SCTP"):
            address, _, port = words[1].rpartition(":")
            if len(address) == 8:
                address = ".".join(str(int(address[i:i + 2], 16)) for i in range(0, 8, 2))
            services.append(f"{words[0]} {address}:{int(port, 16)}")
        elif len(words) >= 2 and words[0] == "FWM":
            services.append(f"FWM {words[1]}")
    return sorted(services)


def _ipvs(path: str = "/proc/net/ip_vs") -> Optional[List[str]]:
    try:
        with open(path) as handle:
            return parse_ip_vs(handle.read())
    except OSError:
        return None   # no IPVS module loaded: nothing can be left there


def _tree(root: str) -> Optional[List[str]]:
    if not os.path.isdir(root):
        return None
    entries = []
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            entries.append(os.path.relpath(os.path.join(base, name), root))
    return sorted(entries)


def _sysctl(name: str) -> Optional[str]:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as handle:
            return " ".join(handle.read().split())
    except OSError:
        return None


def capture(run: Runner, watched_paths: List[str], sysctls: List[str],
            bpf_root: str = "/sys/fs/bpf") -> Dict[str, Any]:
    """Everything a CNI plugin can leave behind on a node, in comparable form."""
    return {
        "format": SNAPSHOT_FORMAT,
        "links": _links(run),
        "addresses": _addresses(run),
        "routes": _routes(run),
        "rules": _rules(run),
        "iptables": _iptables(run),
        "nft_tables": _nft_tables(run),
        "ipsets": _ipsets(run),
        "qdiscs": _qdiscs(run),
        "ipvs": _ipvs(),
        "bpf": _tree(bpf_root),
        "bpf_root": bpf_root,
        "paths": {path: _tree(path) if os.path.isdir(path) else
                  ("file" if os.path.exists(path) else None) for path in watched_paths},
        "sysctls": {name: _sysctl(name) for name in sysctls},
    }


# --- compare ---------------------------------------------------------------------------

def _extra(now: List[str], base: List[str]) -> List[str]:
    return [item for item in now if item not in set(base)]


def differences(baseline: Dict[str, Any], now: Dict[str, Any]) -> List[str]:
    """One line per way ``now`` differs from ``baseline``; empty means clean."""
    diff: List[str] = []
    for name, link in sorted(now["links"].items()):
        base = baseline["links"].get(name)
        if base is None and fallback_module(name, link):
            continue                      # kept(): goes only with its module
        if base is None:
            diff.append("link {} ({}): not in the baseline".format(name, link["kind"] or "?"))
        elif link["mtu"] != base["mtu"]:
            diff.append("link {}: mtu {}, baseline {}".format(name, link["mtu"], base["mtu"]))
    diff += [f"link {name}: in the baseline, now missing"
             for name in sorted(set(baseline["links"]) - set(now["links"]))]
    for name, addresses in sorted(now["addresses"].items()):
        if name in baseline["links"]:
            diff += [f"address {a} on {name}: not in the baseline"
                     for a in _extra(addresses, baseline["addresses"].get(name, []))]
    for key, label in (("routes", "route"), ("rules", "rule"), ("qdiscs", "qdisc")):
        diff += [f"{label} {item}: not in the baseline"
                 for item in _extra(now[key], baseline[key])]
        diff += [f"{label} {item}: in the baseline, now missing"
                 for item in _extra(baseline[key], now[key])]
    for backend in sorted(set(now["iptables"]) | set(baseline["iptables"])):
        tables_now = now["iptables"].get(backend, {})
        tables_base = baseline["iptables"].get(backend, {})
        for table in sorted(set(tables_now) | set(tables_base)):
            diff += _table_diff(f"iptables {backend} {table}",
                                tables_base.get(table), tables_now.get(table))
    diff += [f"nft table {t}: not in the baseline" for t in _native_nft_extra(baseline, now)]
    diff += [f"ipset {item}: not in the baseline"
             for item in _extra(now["ipsets"] or [], baseline["ipsets"] or [])]
    diff += [f"ipvs service {item}: not in the baseline"
             for item in _extra(now.get("ipvs") or [], baseline.get("ipvs") or [])]
    if now["bpf"] is not None:
        diff += ["bpf {}/{}: not in the baseline".format(now["bpf_root"], item)
                 for item in _extra(now["bpf"], baseline["bpf"] or [])]
    for path, entries in sorted(now["paths"].items()):
        base = baseline["paths"].get(path)
        if entries is None:
            continue
        if base is None:
            diff.append(f"path {path}: not in the baseline")
        elif isinstance(entries, list):
            diff += [f"path {path}/{item}: not in the baseline"
                     for item in _extra(entries, base if isinstance(base, list) else [])]
    for name, value in sorted(now["sysctls"].items()):
        base_value = baseline["sysctls"].get(name)
        if base_value is not None and value != base_value:
            diff.append(f"sysctl {name} = {value}, baseline {base_value}")
    return diff


def kept(baseline: Dict[str, Any], now: Dict[str, Any]) -> List[str]:
    """Links not in the baseline that a purge cannot remove while their module is
    loaded: tunnel drivers' fallback devices (see the module docstring)."""
    return ["link {} ({}): kept, the fallback device of the loaded {} module (it goes "
            "only with the module, which is built in or in use)".format(
                name, link["kind"], fallback_module(name, link))
            for name, link in sorted(now["links"].items())
            if name not in baseline["links"] and fallback_module(name, link)]


def _native_nft_extra(baseline: Dict[str, Any], now: Dict[str, Any]) -> List[str]:
    """nft tables not in the baseline, except iptables-nft's own (ip filter, ip6 nat, ...):
    those are compared, and restored, as iptables tables."""
    compat = {f"{f} {t}" for f in ("ip", "ip6")
              for t in ("filter", "nat", "mangle", "raw", "security")}
    return [t for t in _extra(now["nft_tables"] or [], baseline["nft_tables"] or [])
            if t not in compat]


def _significant(content: Dict[str, Any]) -> Dict[str, str]:
    """Chains that matter: user chains and built-ins whose policy is not ACCEPT."""
    return {c: p for c, p in content["policies"].items()
            if not _builtin(c) or p not in _EMPTY_POLICIES}


def _table_diff(label: str, base: Optional[Dict[str, Any]],
                now: Optional[Dict[str, Any]]) -> List[str]:
    if base == now:
        return []
    base = base or {"policies": {}, "rules": []}
    now = now or {"policies": {}, "rules": []}
    lines = []
    now_chains, base_chains = _significant(now), _significant(base)
    for chain in sorted(set(now_chains) - set(base_chains)):
        if _builtin(chain):
            lines.append(f"{label}: chain {chain} policy {now_chains[chain]}, baseline ACCEPT")
        else:
            lines.append(f"{label}: chain {chain} not in the baseline")
    for chain in sorted(set(base_chains) - set(now_chains)):
        lines.append(f"{label}: chain {chain} in the baseline, now missing")
    for chain in sorted(set(now_chains) & set(base_chains)):
        if now_chains[chain] != base_chains[chain]:
            lines.append(f"{label}: chain {chain} policy {now_chains[chain]}, "
                         f"baseline {base_chains[chain]}")
    lines += [f"{label}: rule not in the baseline: {r}"
              for r in _extra(now["rules"], base["rules"])]
    lines += [f"{label}: rule in the baseline, now missing: {r}"
              for r in _extra(base["rules"], now["rules"])]
    return lines or [f"{label}: rule order differs from the baseline"]


# --- purge -----------------------------------------------------------------------------

def _restore_text(table: str, content: Optional[Dict[str, Any]]) -> str:
    lines = ["*" + table]
    if content:
        lines += [f":{c} {p} [0:0]" for c, p in sorted(content["policies"].items())]
        lines += content["rules"]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def purge_actions(baseline: Dict[str, Any], now: Dict[str, Any]) -> List[List[str]]:
    """The commands that bring ``now`` back to ``baseline``, in a safe order: rules before
    the ipsets they reference, qdiscs and links before routes, files last. Each action
    is an argv; ``["restore", tool, text]`` feeds text to ``<tool>-restore``,
    ``["rm", path]`` removes a path and ``["sysctl", name, value]`` writes one."""
    actions: List[List[str]] = []
    for backend in sorted(now["iptables"]):
        tool = dict((f"{b}-{f}", t) for b, f, t in _BACKENDS)[backend]
        base_tables = baseline["iptables"].get(backend, {})
        for table, content in sorted(now["iptables"][backend].items()):
            if base_tables.get(table) != content:
                actions.append(["restore", tool, _restore_text(table, base_tables.get(table))])
        for table in sorted(set(base_tables) - set(now["iptables"][backend])):
            actions.append(["restore", tool, _restore_text(table, base_tables[table])])
    for table in _native_nft_extra(baseline, now):
        family, name = table.split(" ", 1)
        actions.append(["nft", "delete", "table", family, name])
    for name in _extra(now["ipsets"] or [], baseline["ipsets"] or []):
        actions.append(["ipset", "destroy", name])
    extra_services = _extra(now.get("ipvs") or [], baseline.get("ipvs") or [])
    if extra_services and not baseline.get("ipvs"):
        actions.append(["ipvsadm", "--clear"])     # none of the node's own: clear them all
    else:
        flags = {"TCP": "--tcp-service", "UDP": "--udp-service", "SCTP": "--sctp-service",
                 "FWM": "--fwmark-service"}
        for service in extra_services:
            protocol, address = service.split(" ", 1)
            actions.append(["ipvsadm", "--delete-service", flags[protocol], address])
    for item in _extra(now["qdiscs"], baseline["qdiscs"]):
        kind, dev = item.split(" ", 1)
        if dev in baseline["links"]:
            actions.append(["tc", "qdisc", "del", "dev", dev, kind])
    # bridges and tunnels before the veths enslaved to them; a veth's peer goes with it;
    # the OVS datapath through its netlink family, fallback devices with their module
    extra_links = [n for n in now["links"] if n not in baseline["links"]]
    extra_links.sort(key=lambda n: (now["links"][n]["kind"] == "veth", n))
    unloads: List[str] = []
    for name in extra_links:
        module = fallback_module(name, now["links"][name])
        if module:
            if module not in unloads:
                unloads.append(module)
        elif now["links"][name]["kind"] == OVS_KIND:
            actions.append(["ovs-datapath-del", name])
        else:
            actions.append(["ip", "link", "del", name])
    actions += [["unload-module", module] for module in unloads]
    for name, link in sorted(now["links"].items()):
        base = baseline["links"].get(name)
        if base and link["mtu"] != base["mtu"]:
            actions.append(["ip", "link", "set", name, "mtu", str(base["mtu"])])
    for name, addresses in sorted(now["addresses"].items()):
        if name in baseline["links"]:
            for address in _extra(addresses, baseline["addresses"].get(name, [])):
                actions.append(["ip", "addr", "del", address, "dev", name])
    for route in _extra(now["routes"], baseline["routes"]):
        words = route.split()
        kind, dst, rest = words[0], words[1], words[2:]
        if "dev" in rest and rest[rest.index("dev") + 1] in extra_links:
            continue                      # gone with its link
        if "proto" in rest:
            rest = rest[:rest.index("proto")]
        actions.append(["ip", "route", "del"] + ([kind] if kind != "unicast" else [])
                       + [dst] + rest)
    for rule in _extra(now["rules"], baseline["rules"]):
        pref, _, selector = rule.partition(":")
        actions.append(["ip", "-4", "rule", "del", "pref", pref.strip(), *selector.split()])
    if now["bpf"]:
        base = set(baseline["bpf"] or [])
        for item in now["bpf"]:
            parent = os.path.dirname(item)
            if item not in base and (not parent or parent in base):
                actions.append(["rm", os.path.join(now["bpf_root"], item)])
    for path, entries in sorted(now["paths"].items()):
        base = baseline["paths"].get(path)
        if entries is None:
            continue
        if base is None:
            actions.append(["rm", path])
        elif isinstance(entries, list) and isinstance(base, list):
            for item in entries:
                parent = os.path.dirname(item)
                if item not in base and (not parent or parent in base):
                    actions.append(["rm", os.path.join(path, item)])
    for name, value in sorted(now["sysctls"].items()):
        base_value = baseline["sysctls"].get(name)
        if base_value is not None and value != base_value:
            actions.append(["sysctl", name, base_value])
    return actions


def describe(action: List[str]) -> str:
    if action[0] == "restore":
        return "{}-restore < baseline table {}".format(action[1], action[2].split("\n", 1)[0][1:])
    if action[0] == "sysctl":
        return f"sysctl {action[1]}={action[2]}"
    if action[0] == "ovs-datapath-del":
        return f"delete Open vSwitch datapath {action[1]} (generic netlink OVS_DP_CMD_DEL)"
    if action[0] == "unload-module":
        return f"modprobe -r {action[1]} (its fallback devices go with it)"
    return " ".join(action)


def apply(run_stdin: Callable[[List[str], Optional[str]], Tuple[int, str, str]],
          actions: List[List[str]]) -> List[str]:
    """Run the purge; returns one line per action that failed (a vanished link or route,
    e.g. a veth deleted with its peer, is not a failure: the compare afterwards judges)."""
    failed = []
    for action in actions:
        if action[0] == "restore":
            rc, _, err = run_stdin([action[1] + "-restore"], action[2])
        elif action[0] == "rm":
            rc, err = _remove(action[1])
        elif action[0] == "sysctl":
            rc, _, err = run_stdin(["sysctl", "-w", f"{action[1]}={action[2]}"], None)
        elif action[0] == "ovs-datapath-del":
            rc, err = delete_ovs_datapath(action[1])
        elif action[0] == "unload-module":
            if not _module_unloadable(action[1]):
                continue          # built in or in use: its fallback devices are kept()
            rc, _, err = run_stdin(["modprobe", "-r", action[1]], None)
        else:
            rc, _, err = run_stdin(action, None)
        if rc != 0 and "Cannot find device" not in err and "No such process" not in err:
            failed.append(f"{describe(action)}: {err.strip() or f'rc {rc}'}")
    return failed


def _remove(path: str) -> Tuple[int, str]:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        return 0, ""
    except OSError as exc:
        return 1, str(exc)
