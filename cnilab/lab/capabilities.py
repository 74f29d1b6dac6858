"""What this kernel and machine can build, found by trying.

Kernels on build machines often have no loadable modules, so reading module
lists or calling modprobe tells nothing: we create each kind of object in a
throwaway namespace and keep the answer. ``cnilab doctor``, the lab preflight
and the tests all use this one probe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

from cnilab import paths

# capability -> (iproute2 "link add" arguments, why a user would care)
LINK_PROBES: dict[str, tuple[list[str], str]] = {
    "veth": (["probe0", "type", "veth", "peer", "name", "probe1"], "pod interfaces"),
    "bridge": (["probe0", "type", "bridge"], "cni0, weave, kube-bridge"),
    "vxlan": (["probe0", "type", "vxlan", "id", "42", "dstport", "4789"], "VXLAN overlays"),
    "ipip": (["probe0", "type", "ipip", "local", "10.0.0.1", "remote", "10.0.0.2"],
             "Calico IP-in-IP (tunl0), kube-router overlay"),
    "geneve": (["probe0", "type", "geneve", "id", "1", "remote", "10.0.0.2"], "Cilium geneve"),
    "wireguard": (["probe0", "type", "wireguard"], "encrypted modes"),
}


@dataclass(frozen=True)
class Capability:
    name: str
    available: bool
    detail: str


def _probe_netns_name() -> str:
    return f"cnl-probe-{os.getpid()}"


def _try(argv: list[str]) -> tuple[bool, str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


@cache
def probe() -> dict[str, Capability]:
    """Probe every capability once per process (needs root for the netns ones)."""
    results: dict[str, Capability] = {}
    if os.geteuid() != 0:
        for name in [*LINK_PROBES, "netns", "bpf", "clsact", "tunnel-offload"]:
            results[name] = Capability(name, False, "not probed: needs root")
        return results
    ns = _probe_netns_name()
    ok, detail = _try(["ip", "netns", "add", ns])
    results["netns"] = Capability("netns", ok, detail or "ip netns add works")
    if not ok:
        for name in [*LINK_PROBES, "bpf", "clsact", "tunnel-offload"]:
            results[name] = Capability(name, False, "no network namespaces")
        return results
    try:
        for name, (args, why) in LINK_PROBES.items():
            ok, detail = _try(["ip", "-n", ns, "link", "add", *args])
            if ok:
                _try(["ip", "-n", ns, "link", "del", "probe0"])
            results[name] = Capability(name, ok, why if ok else f"{why}: {detail}")
        _try(["ip", "-n", ns, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"])
        ok, detail = _try(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "probe0",
                           "clsact"])
        results["clsact"] = Capability("clsact", ok, "tc clsact qdisc" if ok else detail)
        results["tunnel-offload"] = _probe_tunnel_offload(ns)
        bpftool = shutil.which("bpftool")
        if bpftool:
            ok, detail = _try([bpftool, "prog", "list"])
            results["bpf"] = Capability("bpf", ok, "bpf() syscall" if ok else detail)
        else:
            results["bpf"] = Capability("bpf", False, "bpftool not installed (package bpftool)")
    finally:
        _try(["ip", "netns", "del", ns])
    return results


def _probe_tunnel_offload(ns: str) -> Capability:
    """Whether a veth's UDP tunnel segmentation offload can be switched off (the lab's
    stand-in for a NIC without VXLAN offload, claim C4)."""
    ethtool = shutil.which("ethtool")
    if not ethtool:
        return Capability("tunnel-offload", False, "ethtool not installed (package ethtool)")
    ok, detail = _try(["ip", "netns", "exec", ns, ethtool, "-K", "probe0",
                       "tx-udp_tnl-segmentation", "off"])
    return Capability("tunnel-offload", ok, "veth tunnel segmentation offload can be "
                      "switched off" if ok else f"ethtool -K tx-udp_tnl-segmentation: {detail}")


def missing(needs: tuple[str, ...] | list[str]) -> list[Capability]:
    """The subset of ``needs`` this machine lacks."""
    table = probe()
    return [table.get(n, Capability(n, False, "unknown capability")) for n in needs
            if not table.get(n, Capability(n, False, "")).available]


def cni_plugins_present(names: tuple[str, ...] = ("bridge", "host-local", "loopback")) -> list[str]:
    """Return the CNI reference plugin binaries that are missing."""
    directory = paths.cni_plugin_dir()
    return [n for n in names if not (directory / n).is_file()]
