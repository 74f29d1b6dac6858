"""What the lab looks like right now, read back from the kernel.

``cnilab lab status`` prints this and every run stores it, so a reader can see
the datapath that was measured (devices, routes, MTUs, rule counts) rather
than the one we meant to build.
"""

from __future__ import annotations

import json
from typing import Any

from cnilab.lab import ebpf, offload, sh
from cnilab.lab.core import lab_namespaces, pod_address
from cnilab.lab.datapaths import datapath_for
from cnilab.lab.plan import LabPlan

TUNNEL_KINDS = {"vxlan", "ipip", "geneve", "gre", "wireguard"}


def _json(netns: str, *args: str) -> list[dict[str, Any]]:
    out = sh.ip(netns, "-j", *args).stdout
    data: list[dict[str, Any]] = json.loads(out) if out.strip() else []
    return data


def _iptables_counts(netns: str) -> dict[str, int]:
    """Number of rules per table (as iptables-save lists them)."""
    out = sh.run(sh.in_netns(netns, ["iptables-save"]), check=False).stdout
    counts: dict[str, int] = {}
    table = ""
    for line in out.splitlines():
        if line.startswith("*"):
            table = line[1:]
            counts[table] = 0
        elif line.startswith("-A ") and table:
            counts[table] += 1
    return counts


def host_status(netns: str) -> dict[str, Any]:
    links = _json(netns, "-d", "link", "show")
    devices = []
    for link in links:
        kind = link.get("linkinfo", {}).get("info_kind", "")
        data = link.get("linkinfo", {}).get("info_data", {})
        entry: dict[str, Any] = {"name": link["ifname"], "kind": kind or "device",
                                 "mtu": link.get("mtu"), "state": link.get("operstate")}
        if kind == "vxlan":
            entry.update({"vni": data.get("id"), "port": data.get("port"),
                          "learning": data.get("learning")})
        devices.append(entry)
    addrs = {a["ifname"]: [f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", [])
                           if i.get("family") == "inet"] for a in _json(netns, "addr", "show")}
    routes = [
        {"dst": r.get("dst"), "type": r.get("type", "unicast"), "via": r.get("gateway"),
         "dev": r.get("dev"),
         "protocol": r.get("protocol", "boot"), "flags": r.get("flags", [])}
        for r in _json(netns, "route", "show")
    ]
    return {
        "devices": devices,
        "addresses": addrs,
        "routes": routes,
        "tunnels": [d for d in devices if d["kind"] in TUNNEL_KINDS],
        "iptables_rules": _iptables_counts(netns),
    }


def lab_status(plan: LabPlan) -> dict[str, Any]:
    """Structured status of the whole lab (JSON-ready)."""
    present = set(lab_namespaces(plan.prefix))
    datapath = datapath_for(plan)
    hosts = []
    for host in plan.hosts:
        if host.netns not in present:
            hosts.append({"name": host.name, "netns": host.netns, "present": False})
            continue
        pods = []
        for pod in host.pods:
            entry: dict[str, Any] = {"name": pod.name, "netns": pod.netns,
                                     "present": pod.netns in present}
            if entry["present"]:
                try:
                    entry["address"] = pod_address(plan, pod)
                except Exception as exc:
                    entry["address"] = f"unknown ({exc})"
                link = _json(pod.netns, "link", "show", pod.ifname)
                entry["mtu"] = link[0]["mtu"] if link else None
            pods.append(entry)
        hosts.append({"name": host.name, "netns": host.netns, "present": True,
                      "underlay_ip": host.underlay_ip, "underlay_if": host.underlay_if,
                      "pod_subnet": host.pod_subnet,
                      "tunnel_offload": offload.features(host.netns, host.underlay_if),
                      **host_status(host.netns), "ebpf": ebpf.attached_programs(host.netns),
                      **datapath.host_details(host), "pods": pods})
    mode = plan.mode_info
    return {
        "lab": "netns",
        "emulation": True,
        "cni": plan.cni,
        "mode": plan.mode,
        "mode_table": mode.as_record(),
        "tunnel_offload": "on" if plan.tunnel_offload else "off",
        "fidelity": [mode.fidelity_for(plan.policy), *datapath.notes(), *offload.note(plan)],
        "underlay": f"switch ({plan.switch_netns})" if plan.switch_netns else "point-to-point veth",
        "hosts": hosts,
    }


def format_status(status: dict[str, Any]) -> str:
    """Human-readable rendering of ``lab_status``."""
    lines = [f"netns lab (an emulation): {status['cni']}/{status['mode']}, "
             f"underlay {status['underlay']}"]
    if "idle_cpu" in status:
        cpu = status["idle_cpu"]
        lines.append(f"idle CPU: the lab's processes {cpu['lab_percent']:.1f} % of the "
                     f"machine (limit {cpu['limit_percent']:.0f} %), the machine "
                     f"{cpu['machine_busy_percent']:.1f} % over {cpu['window_s']:g} s")
    for note in status["fidelity"]:
        lines.append(f"  fidelity: {note}")
    for host in status["hosts"]:
        if not host["present"]:
            lines.append(f"host {host['name']}: MISSING ({host['netns']})")
            continue
        lines.append(f"host {host['name']} [{host['netns']}] underlay {host['underlay_ip']} "
                     f"pods {host['pod_subnet']}")
        for dev in host["devices"]:
            # Per-pod veths are listed under their pods; show the mode's own devices.
            shown = {host["underlay_if"], *status["mode_table"]["devices"]}
            if dev["name"] == "lo" or (dev["kind"] == "veth" and dev["name"] not in shown):
                continue
            extra = ""
            if dev["kind"] == "vxlan":
                extra = f" vni {dev['vni']} port {dev['port']} learning {dev['learning']}"
            addrs = ",".join(host["addresses"].get(dev["name"], []))
            lines.append(f"  dev {dev['name']:<10} {dev['kind']:<7} mtu {dev['mtu']:<5} "
                         f"{dev['state']:<7} {addrs}{extra}")
        for r in host["routes"]:
            via = f" via {r['via']}" if r["via"] else ""
            flags = f" {','.join(r['flags'])}" if r["flags"] else ""
            kind = "" if r["type"] == "unicast" else f"{r['type']} "
            dev = f" dev {r['dev']}" if r["dev"] else ""
            lines.append(f"  route {kind}{r['dst']}{via}{dev} proto {r['protocol']}{flags}")
        for s in host.get("bgp_sessions", []):
            lines.append(f"  bgp {s['name']:<22} {s['state']:<6} {s['info']}")
        if host["ebpf"]:
            progs = ", ".join(f"{p['dev']}:{p['kind']}:{p['name']}" for p in host["ebpf"])
            lines.append(f"  ebpf {progs}")
        counts = ", ".join(f"{t} {n}" for t, n in sorted(host["iptables_rules"].items()))
        lines.append(f"  iptables rules: {counts or 'none'}")
        for pod in host["pods"]:
            state = f"{pod.get('address')} mtu {pod.get('mtu')}" if pod["present"] else "MISSING"
            lines.append(f"  pod {pod['name']:<8} {state}")
    return "\n".join(lines)
