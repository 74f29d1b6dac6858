"""Which versions of the tools are actually installed, as the tools report them.

Results depend on the binaries that ran, not on the pins we wished for, so the
manifest records both and ``cnilab doctor`` shows any difference.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from cnilab import paths
from cnilab.pins import Pins


@dataclass(frozen=True)
class ToolVersion:
    tool: str
    path: str | None
    reported: str | None       # version the binary printed (None if absent)
    package: str | None        # distribution package version, if known
    pinned: str
    banner: str                # the first line the tool printed, verbatim

    @property
    def matches_pin(self) -> bool:
        return self.reported is not None and (
            self.reported == self.pinned or self.reported.startswith(self.pinned + ".")
        )

    def as_record(self) -> dict[str, Any]:
        return {"path": self.path, "reported": self.reported, "package": self.package,
                "pinned": self.pinned, "matches_pin": self.matches_pin, "banner": self.banner}


# tool -> (binary, argv to print a version, regex capturing the version)
_QUERIES: dict[str, tuple[str, list[str], str]] = {
    "iperf3": ("iperf3", ["--version"], r"iperf\s+(\d+\.\d+(?:\.\d+)?)"),
    "netperf": ("netperf", ["-V"], r"Netperf version\s+(\d+\.\d+\.\d+)"),
    "bird": ("bird", ["--version"], r"BIRD version\s+(\d+\.\d+\.\d+)"),
    "gobgp": ("gobgpd", ["--version"], r"gobgpd version\s+(\d+\.\d+\.\d+)"),
    "iptables": ("iptables", ["--version"], r"iptables v(\d+\.\d+\.\d+)"),
    "clang": ("clang", ["--version"], r"clang version\s+(\d+)"),
}


def _package_version(package: str | None) -> str | None:
    if not package or not shutil.which("dpkg-query"):
        return None
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _query(tool: str, pins: Pins) -> ToolVersion:
    pin = pins.tools.get(tool, {})
    package = pin.get("package")
    pinned = str(pin.get("version", ""))
    if tool == "cni_plugins":
        binary = paths.cni_plugin_dir() / "bridge"
        if not binary.is_file():
            return ToolVersion(tool, None, None, None, pinned, "")
        proc = subprocess.run([str(binary)], env={"CNI_COMMAND": "VERSION"},
                              capture_output=True, text=True, check=False)
        banner = proc.stderr.splitlines()[0] if proc.stderr else ""
        match = re.search(r"v(\d+\.\d+\.\d+)", banner)
        pkg = _package_version(package)
        # Debian's build prints "version unknown": the package version is the truth.
        reported = match.group(1) if match else (pkg.split("+")[0] if pkg else None)
        return ToolVersion(tool, str(binary), reported, pkg, pinned, banner)
    binary_name, argv, pattern = _QUERIES[tool]
    path = shutil.which(binary_name)
    if path is None:
        return ToolVersion(tool, None, None, None, pinned, "")
    proc = subprocess.run([path, *argv], capture_output=True, text=True, check=False, timeout=10)
    text = (proc.stdout + proc.stderr).strip()
    match = re.search(pattern, text)
    banner = text.splitlines()[0] if text else ""
    return ToolVersion(tool, path, match.group(1) if match else None,
                       _package_version(package), pinned, banner)


def installed_versions(pins: Pins, tools: list[str] | None = None) -> dict[str, ToolVersion]:
    """Query every pinned tool (or the named ones)."""
    names = tools or list(pins.tools)
    return {name: _query(name, pins) for name in names if name in pins.tools}


def iptables_backend() -> str:
    """``nf_tables`` or ``legacy``: rule cost differs about 4x, so results record it."""
    path = shutil.which("iptables")
    if path is None:
        return "absent"
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"\((\w+)\)", proc.stdout)
    return match.group(1) if match else "legacy"
