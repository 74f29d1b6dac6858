"""The CNI mode table (``cnilab/catalog/modes.yml``) as typed objects.

The table is data so that the lab, the reports and the real-cluster roles all
read one description of each mode instead of scattering per-plugin conditionals.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CATALOG = Path(__file__).resolve().parent / "catalog" / "modes.yml"


@dataclass(frozen=True)
class Mode:
    """One (plugin, mode) of the study and the datapath it builds."""

    cni: str
    name: str
    encapsulation: str
    udp_port: int | None
    vni: int | None
    mtu: int
    routing: str
    policy_engine: str
    pod_attach: str
    pod_block_prefix: int
    policy_options: tuple[bool, ...]
    devices: tuple[str, ...]
    needs: tuple[str, ...]
    lab: str
    fidelity: str
    fidelity_policy: str = ""

    def fidelity_for(self, policy: bool) -> str:
        """What the lab builds of the mode as configured (the policy chains only when
        policy is on)."""
        return f"{self.fidelity} {self.fidelity_policy}" if policy and self.fidelity_policy \
            else self.fidelity

    @property
    def key(self) -> str:
        return f"{self.cni}/{self.name}"

    def vxlan(self) -> tuple[int, int]:
        """(VNI, UDP port) of a mode with a fixed VXLAN identity (the catalog's)."""
        if self.vni is None or self.udp_port is None:
            raise ValueError(f"{self.key}: the catalog gives no fixed VNI and UDP port")
        return self.vni, self.udp_port

    @property
    def offload_options(self) -> tuple[bool, ...]:
        """Tunnel offload settings a spec may ask for: on and off where the mode sends
        UDP tunnel packets (VXLAN), whose segmentation a NIC can take over; on alone
        otherwise (there is nothing to offload)."""
        return (True, False) if self.encapsulation == "vxlan" else (True,)

    @property
    def lab_implemented(self) -> bool:
        return self.lab == "implemented"

    def as_record(self) -> dict[str, Any]:
        return {
            "cni": self.cni, "mode": self.name, "encapsulation": self.encapsulation,
            "udp_port": self.udp_port, "vni": self.vni, "mtu": self.mtu,
            "routing": self.routing, "policy_engine": self.policy_engine,
            "pod_attach": self.pod_attach, "pod_block_prefix": self.pod_block_prefix,
            "policy": ["on" if p else "off" for p in self.policy_options],
            "devices": list(self.devices),
            "lab": self.lab, "fidelity": self.fidelity,
            "fidelity_policy": self.fidelity_policy,
        }


def mode_key(cni: str, mode: str, policy: bool = False, offload: bool = True) -> str:
    """The name of a matrix entry: ``cni/mode``, ``+policy`` when network policy is
    enforced, ``+offload-off`` when the NIC's tunnel offload is switched off."""
    return f"{cni}/{mode}{'+policy' if policy else ''}{'' if offload else '+offload-off'}"


def record_mode_key(cell: dict[str, Any]) -> str:
    """The matrix entry of a record's ``cell`` (records before ``offload`` had it on)."""
    return mode_key(str(cell["cni"]), str(cell["mode"]), bool(cell.get("policy")),
                    cell.get("offload", True) is not False)


@dataclass(frozen=True)
class PluginFacts:
    """What the real-cluster path needs to know of a plugin as a whole."""

    cni: str
    install: str                    # manifest | helm
    daemonset_selector: str
    state_dirs: tuple[str, ...]
    replaces_kube_proxy: bool
    switches_policy_engine: bool


@cache
def plugin_facts() -> dict[str, PluginFacts]:
    """Every plugin's cluster facts (catalog ``plugins.<cni>.cluster``)."""
    data = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    return {cni: PluginFacts(cni=cni, install=entry["cluster"]["install"],
                             daemonset_selector=entry["cluster"]["daemonset_selector"],
                             state_dirs=tuple(entry["cluster"]["state_dirs"]),
                             replaces_kube_proxy=bool(entry["cluster"]["replaces_kube_proxy"]),
                             switches_policy_engine=bool(
                                 entry["cluster"]["switches_policy_engine"]))
            for cni, entry in data["plugins"].items()}


@cache
def catalog() -> dict[str, dict[str, Mode]]:
    """All modes, keyed by plugin then mode name."""
    data = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    table: dict[str, dict[str, Mode]] = {}
    for cni, entry in data["plugins"].items():
        table[cni] = {}
        for name, m in entry["modes"].items():
            table[cni][name] = Mode(
                cni=cni, name=name, encapsulation=m["encapsulation"], udp_port=m["udp_port"],
                vni=m["vni"], mtu=int(m["mtu"]), routing=m["routing"],
                policy_engine=m["policy_engine"], pod_attach=m["pod_attach"],
                pod_block_prefix=int(m["pod_block_prefix"]),
                policy_options=tuple(p == "on" for p in m["policy"]),
                devices=tuple(m["devices"]), needs=tuple(m["needs"]), lab=m["lab"],
                fidelity=" ".join(str(m["fidelity"]).split()),
                fidelity_policy=" ".join(str(m.get("fidelity_policy", "")).split()),
            )
    return table


def get_mode(cni: str, mode: str) -> Mode:
    """Look up a mode; KeyError with the allowed values if unknown."""
    table = catalog()
    if cni not in table:
        raise KeyError(f"unknown cni '{cni}' (allowed: {', '.join(sorted(table))})")
    if mode not in table[cni]:
        allowed = ", ".join(sorted(table[cni]))
        raise KeyError(f"unknown mode '{mode}' for cni '{cni}' (allowed: {allowed})")
    return table[cni][mode]
