"""``cnilab doctor``: what is installed, what the kernel supports, what is missing and how."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cnilab import paths
from cnilab.lab import capabilities
from cnilab.modes import catalog
from cnilab.pins import Pins
from cnilab.toolversions import installed_versions, iptables_backend

# Tools the netns lab cannot work without (the rest are needed by later modes).
REQUIRED = ("iperf3", "cni_plugins", "iptables")


@dataclass(frozen=True)
class Finding:
    level: str     # ok | warn | missing
    subject: str
    detail: str


def diagnose(pins: Pins) -> list[Finding]:
    findings: list[Finding] = []
    if os.geteuid() != 0:
        findings.append(Finding("missing", "root", "the netns lab needs root: run as root"))
    for name, tv in installed_versions(pins).items():
        pin = pins.tools[name]
        how = f"apt-get install {pin.get('package', name)}"
        if pin.get("component"):
            how += f" (Debian '{pin['component']}' component; scripts/install-system-deps.sh " \
                   "enables it)"
        if tv.reported is None:
            level = "missing" if name in REQUIRED else "warn"
            findings.append(Finding(level, name, f"not installed; {how}"))
        elif not tv.matches_pin:
            findings.append(Finding("warn", name, f"{tv.reported} installed, pinned "
                                    f"{tv.pinned}: results will record the difference"))
        else:
            findings.append(Finding("ok", name, f"{tv.reported} at {tv.path}"))
    missing_plugins = capabilities.cni_plugins_present()
    if missing_plugins:
        findings.append(Finding("missing", "cni plugins",
                                f"{', '.join(missing_plugins)} not in {paths.cni_plugin_dir()}"))
    findings.append(Finding("ok", "iptables backend", iptables_backend()))
    caps = capabilities.probe()
    for name, cap in caps.items():
        users = sorted(m.key for modes in catalog().values() for m in modes.values()
                       if name in m.needs)
        if cap.available:
            findings.append(Finding("ok", f"kernel {name}", cap.detail))
        else:
            affected = f"; modes needing it: {', '.join(users)}" if users else ""
            findings.append(Finding("warn", f"kernel {name}",
                                    f"unavailable ({cap.detail}){affected}"))
    return findings


def render(findings: list[Finding]) -> str:
    mark = {"ok": "ok  ", "warn": "WARN", "missing": "MISS"}
    return "\n".join(f"{mark[f.level]}  {f.subject:<18} {f.detail}" for f in findings)
