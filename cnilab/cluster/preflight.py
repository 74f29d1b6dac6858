"""``cnilab doctor --inventory``: check every host over SSH before Ansible touches it.

Why before Ansible: a cluster run takes tens of minutes and fails late on things that
are cheap to see first (a host that does not answer, sudo asking for a password, cgroup
v1 under a kubelet that needs v2, ``node_ip`` on no interface, one host with a
different MTU, a clock minutes off that breaks certificates and skews timestamps).
Each problem is one line naming the host. paramiko is used directly so the preflight
has no dependency on the Ansible configuration it is checking.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import paramiko

from cnilab.cluster.hostkeys import HostKeyChanged
from cnilab.cluster.ssh import clock_skew, connect, read_clock
from cnilab.inventory import Node

MAX_CLOCK_SKEW_S = 0.5
# Ubuntu 18.04 is not here: its Python 3.6 is below what ansible-core 2.19 runs modules
# with, and its iproute2 4.15 prints no JSON routes (the python and iproute2 checks say so)
SUPPORTED_OS = {("debian", "12"), ("debian", "13"), ("ubuntu", "20.04"),
                ("ubuntu", "22.04"), ("ubuntu", "24.04")}
# How to switch the cgroup hierarchy on a systemd host (kernel command line, then reboot)
CGROUP_REMEDY = {"1": "boot with systemd.unified_cgroup_hierarchy=0 on the kernel command line",
                 "2": "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line"}


@cache
def min_target_python() -> tuple[int, ...]:
    """The oldest Python the installed (pinned) ansible-core runs modules with on a
    managed node: ``_PY_MIN`` in its ``module_utils/basic.py``, which every module
    imports first and which fails the task below it. Read from the source rather than
    written down here, so the preflight and the pin cannot disagree."""
    spec = importlib.util.find_spec("ansible.module_utils.basic")
    if spec is None or spec.origin is None:
        raise RuntimeError("ansible-core is not installed: it is one of cnilab's dependencies")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_PY_MIN" for t in node.targets):
            value = ast.literal_eval(node.value)
            return tuple(int(v) for v in value)
    raise RuntimeError(f"{spec.origin}: no _PY_MIN (another ansible-core than the pinned one?)")

# one shell round trip gathers everything; each line is KEY=VALUE or a JSON blob
_PROBE = r"""
echo "os=$(. /etc/os-release && echo "$ID $VERSION_ID")"
echo "kernel=$(uname -r)"
echo "python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
echo "cgroup=$( [ -e /sys/fs/cgroup/cgroup.controllers ] && echo v2 || echo v1)"
echo "swap=$(tail -n +2 /proc/swaps | wc -l)"
echo "addr=$(ip -j addr show 2>/dev/null)"
echo "routes_json=$(ip -j route show 2>/dev/null | head -c 1)"
"""


@dataclass(frozen=True)
class Check:
    host: str
    ok: bool
    subject: str
    detail: str

    def render(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.host:<12} {self.subject:<10} {self.detail}"


@dataclass
class Probe:
    """What one host reported (or why it could not be asked)."""

    values: dict[str, str]
    sent_at: float
    received_at: float
    sudo_error: str = ""


Runner = Callable[[Node], Probe]


def parse_probe(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _exec(client: paramiko.SSHClient, command: str, timeout: float) -> tuple[int, str, str]:
    _, stdout, stderr = client.exec_command(command, timeout=timeout)
    out = stdout.read().decode(errors="replace")
    err = stderr.read().decode(errors="replace")
    return stdout.channel.recv_exit_status(), out, err


def ssh_probe(node: Node, timeout: float = 10.0) -> Probe:
    """Ask one host over SSH (raises OSError / paramiko errors when it cannot)."""
    client = connect(node, timeout)
    try:
        sudo_error = ""
        if str(node.vars.get("ansible_user", "root")) != "root":
            rc, _, err = _exec(client, "sudo -n true", timeout)
            if rc != 0:
                sudo_error = err.strip().splitlines()[-1] if err.strip() else f"rc {rc}"
        _, out, _ = _exec(client, "sh -c " + shlex.quote(_PROBE), timeout)
        values = parse_probe(out)
        clock, sent, round_trip = read_clock(client, timeout)
        values["clock"] = f"{clock:.6f}"
        return Probe(values, sent, sent + round_trip, sudo_error)
    finally:
        client.close()


def _login(node: Node) -> str:
    return f"{node.vars.get('ansible_user', 'root')}@{node.address}:" \
        f"{node.vars.get('ansible_port', 22)}"


def _host_checks(node: Node, probe: Probe, cgroup_required: str,
                 nic: dict[str, Any]) -> list[Check]:
    host, values = node.name, probe.values
    checks = [Check(host, True, "ssh", _login(node))]
    checks.append(Check(host, not probe.sudo_error, "sudo",
                        "passwordless" if not probe.sudo_error else
                        f"sudo -n fails ({probe.sudo_error}): Ansible needs passwordless sudo"))
    os_name, _, os_version = values.get("os", "?").partition(" ")
    supported = (os_name, os_version) in SUPPORTED_OS
    known = ", ".join(sorted(" ".join(o) for o in SUPPORTED_OS))
    checks.append(Check(host, supported, "os", f"{os_name} {os_version}" + (
        "" if supported else f" is not one the roles are written for ({known})")))
    checks.append(Check(host, True, "kernel", values.get("kernel", "?")))
    python = values.get("python", "")
    version = tuple(int(p) for p in python.split(".")) if python else (0,)
    minimum = min_target_python()
    wanted = ".".join(map(str, minimum))
    checks.append(Check(host, version >= minimum, "python",
                        (python or "none") + ("" if version >= minimum else
                                              f" (the pinned ansible-core runs modules only "
                                              f"with python3 >= {wanted} on the node)")))
    # iproute2 < 4.17 accepts -j but prints routes as text; node_state and every mode
    # check parse `ip -j route`
    json_routes = values.get("routes_json") == "["
    checks.append(Check(host, json_routes, "iproute2",
                        "JSON routes" if json_routes else
                        "`ip -j route` prints no JSON (iproute2 >= 4.17 needed: "
                        "cnilab reads routes as JSON)"))
    cgroup = values.get("cgroup", "?")
    cgroup_ok = cgroup_required == "any" or cgroup == f"v{cgroup_required}"
    checks.append(Check(host, cgroup_ok, "cgroup", cgroup + ("" if cgroup_ok else
                  f": this profile's kubelet needs cgroup v{cgroup_required}; "
                  f"{CGROUP_REMEDY.get(cgroup_required, '')}")))
    checks.append(Check(host, bool(nic), "node_ip",
                        f"{node.node_ip} on {nic['name']}, mtu {nic['mtu']}" if nic else
                        f"{node.node_ip} is on no interface of this host (inventory error?)"))
    try:
        skew = clock_skew(float(values.get("clock", "")), probe.sent_at, probe.received_at)
        checks.append(Check(host, abs(skew) <= MAX_CLOCK_SKEW_S, "clock",
                            f"skew {skew:+.3f} s" + ("" if abs(skew) <= MAX_CLOCK_SKEW_S else
                                                     f" (more than {MAX_CLOCK_SKEW_S} s: "
                                                     "enable time sync)")))
    except ValueError:
        checks.append(Check(host, False, "clock", "could not read the host's clock"))
    return checks


def nic_of(addr_json: str, node_ip: str) -> dict[str, Any]:
    """The interface holding ``node_ip`` (name and MTU) in ``ip -j addr`` output."""
    try:
        links = json.loads(addr_json) if addr_json else []
    except ValueError:
        return {}
    for link in links:
        if any(a.get("local") == node_ip for a in link.get("addr_info", [])):
            return {"name": link["ifname"], "mtu": link.get("mtu")}
    return {}


def preflight(nodes: list[Node], cgroup_required: str = "2",
              probe: Runner = ssh_probe) -> list[Check]:
    """Every check for every host, then the checks across hosts (equal MTUs)."""
    checks: list[Check] = []
    mtus: dict[str, Any] = {}
    for node in nodes:
        try:
            result = probe(node)
        except HostKeyChanged as exc:
            checks.append(Check(node.name, False, "hostkey", str(exc).split(": ", 1)[1]))
            continue
        except (OSError, paramiko.SSHException) as exc:
            reason = str(exc) or type(exc).__name__
            checks.append(Check(node.name, False, "ssh",
                                f"{_login(node)} unreachable: {reason}"))
            continue
        nic = nic_of(result.values.get("addr", ""), node.node_ip)
        checks += _host_checks(node, result, cgroup_required, nic)
        if nic:
            mtus[node.name] = nic["mtu"]
    if len(set(mtus.values())) > 1:
        listing = ", ".join(f"{h} {m}" for h, m in sorted(mtus.items()))
        checks.append(Check("all", False, "mtu",
                            f"node_ip interfaces differ in MTU ({listing}): every CNI derives "
                            "its MTU from it, so results would not be comparable"))
    elif mtus:
        checks.append(Check("all", True, "mtu", f"{next(iter(mtus.values()))} on every host"))
    return checks
