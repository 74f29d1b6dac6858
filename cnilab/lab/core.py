"""Building, inspecting and tearing down the netns lab.

The playbook calls these steps through the ``cnilab.lab`` Ansible modules
(hosts, then datapath, then pods); ``down`` is also callable directly so that a
crashed or killed run can always be cleaned up, with or without Ansible.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnilab import paths
from cnilab.errors import CapabilityError, CnilabError, InputError
from cnilab.lab import capabilities, hosts, offload, sh
from cnilab.lab.datapaths import datapath_for
from cnilab.lab.plan import (
    PREFIX,
    HostPlan,
    LabPlan,
    PodPlan,
    instance_of,
    load_saved_plan,
    prefix_of,
    saved_plan_path,
    state_dir_of,
)
from cnilab.rundir import atomic_write_text


def check_buildable(plan: LabPlan) -> None:
    """Refuse a mode this machine cannot build: root, kernel features (named), and
    whether the lab implements the mode yet. Touches nothing."""
    if plan.mode_info.lab == "real-only":
        raise CapabilityError(f"{plan.cni}/{plan.mode} runs on real clusters only "
                              "(--inventory): the netns lab does not emulate it")
    if os.geteuid() != 0:
        raise CapabilityError("the netns lab needs root (network namespaces, iptables)")
    needs = (*plan.mode_info.needs, *(() if plan.tunnel_offload else ("tunnel-offload",)))
    lacking = capabilities.missing(needs)
    if lacking:
        names = "; ".join(f"{c.name} ({c.detail})" for c in lacking)
        raise CapabilityError(f"{plan.cni}/{plan.mode} needs kernel features this machine "
                              f"lacks: {names}")
    datapath_for(plan)  # refuses modes the lab cannot build yet


def preflight(plan: LabPlan) -> None:
    """Refuse up front, naming what is missing, before anything is created."""
    check_buildable(plan)
    absent = capabilities.cni_plugins_present()
    if absent:
        raise CapabilityError(f"CNI reference plugins missing in {paths.cni_plugin_dir()}: "
                              f"{', '.join(absent)} (package containernetworking-plugins)")
    saved = load_saved_plan(plan.instance)
    if saved is not None and saved != plan:
        where = f"netns:{plan.instance}" if plan.instance else "netns"
        raise InputError(f"a lab is already up ({saved.cni}/{saved.mode}, "
                         f"{len(saved.hosts)} hosts); run 'cnilab lab down --lab {where}' "
                         "first")


def ensure_hosts(plan: LabPlan) -> bool:
    """Step 1: record the plan (so ``down`` finds everything) and create the hosts."""
    path = saved_plan_path(plan.instance)
    if not path.is_file():
        atomic_write_text(path, plan.to_json())
    return hosts.ensure_hosts(plan)


def ensure_datapath(plan: LabPlan) -> bool:
    """Step 2: the mode's host devices, rules and per-peer entries."""
    datapath = datapath_for(plan)
    changed = False
    for host in plan.hosts:
        changed |= datapath.build_host(host)
    for host in plan.hosts:
        changed |= datapath.connect_peers(host)
    changed |= offload.apply(plan)
    return changed


def _pod_result_path(plan: LabPlan, pod: PodPlan) -> Path:
    return plan.state_dir() / "pods" / f"{pod.name}.json"


def attach_pod(plan: LabPlan, host: HostPlan, pod: PodPlan) -> dict[str, Any]:
    """Create the pod's namespace and run CNI ADD for it, as the runtime does."""
    datapath = datapath_for(plan)
    sh.run(["ip", "netns", "add", pod.netns])
    result = datapath.attach_pod(host, pod)
    atomic_write_text(_pod_result_path(plan, pod), json.dumps(result, indent=2))
    return result


def ensure_pods(plan: LabPlan) -> bool:
    """Step 3: attach every pod that is not attached yet."""
    present = hosts.existing_netns()
    changed = False
    for host in plan.hosts:
        for pod in host.pods:
            if pod.netns in present and _pod_result_path(plan, pod).is_file():
                continue
            if pod.netns in present:  # half-built by an interrupted run: start it over
                sh.run(["ip", "netns", "del", pod.netns])
            attach_pod(plan, host, pod)
            changed = True
    return changed


def ensure_endpoints(plan: LabPlan) -> bool:
    """Step 4: per-endpoint datapath (eBPF, policy chains) and the kube-proxy Service."""
    from cnilab.lab import kube_proxy

    datapath = datapath_for(plan)
    addresses = {p.name: pod_address(plan, p) for h in plan.hosts for p in h.pods}
    changed = False
    for host in plan.hosts:
        changed |= datapath.after_pods(host, addresses)
    for host in plan.hosts:
        changed |= kube_proxy.ensure_node_rules(plan, host, addresses)
    return changed


def pod_address(plan: LabPlan, pod: PodPlan) -> str:
    """The pod's IPv4 address as the CNI ADD result reported it."""
    path = _pod_result_path(plan, pod)
    if not path.is_file():
        raise CnilabError(f"pod {pod.name} is not attached (no CNI result at {path})")
    result = json.loads(path.read_text(encoding="utf-8"))
    for ipconf in result.get("ips", []):
        address = str(ipconf["address"])
        if ":" not in address:
            return address.split("/")[0]
    raise CnilabError(f"pod {pod.name}: CNI result has no IPv4 address")


# ---------------------------------------------------------------- teardown


@dataclass
class TeardownReport:
    namespaces: list[str]
    processes: list[int]
    root_links: list[str]
    state_removed: bool

    @property
    def removed_anything(self) -> bool:
        return bool(self.namespaces or self.processes or self.root_links or self.state_removed)


# Set in the environment of every process that builds a lab (the playbook, its
# modules, what they start), to the lab's prefix, so that ``down`` can stop a build
# of that lab that outlived a killed cnilab (ansible-playbook runs in its own session
# and keeps going) and leave the builds of other instances alone.
BUILDER_ENV = "CNILAB_LAB_BUILDER"


def builder_env(*prefixes: str) -> dict[str, str]:
    """The mark of a build of the labs ``prefixes`` (one playbook may build several)."""
    return {BUILDER_ENV: " ".join(prefixes or (PREFIX,))}


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
                pid = int(fh.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def builder_pids(prefix: str = PREFIX) -> list[int]:
    """Processes building the lab ``prefix``, except this process and its ancestors."""
    marker = f"{BUILDER_ENV}=".encode()
    mine = _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(item.startswith(marker) and prefix.encode() in item[len(marker):].split()
               for item in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def _stop_builders(prefix: str) -> list[int]:
    """SIGKILL an unfinished build first, so nothing is created behind ``down``'s back."""
    pids = builder_pids(prefix)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def lab_namespaces(prefix: str = PREFIX) -> list[str]:
    """Every namespace that carries the lab prefix (also ones no plan mentions)."""
    return sorted(n for n in hosts.existing_netns() if n.startswith(f"{prefix}-"))


def _namespace_pids(netns: str) -> list[int]:
    out = sh.run(["ip", "netns", "pids", netns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _pidfile_pids(prefix: str) -> list[int]:
    pid_dir = state_dir_of(instance_of(prefix)) / "pids"
    found = []
    for pidfile in pid_dir.glob("*.pid") if pid_dir.is_dir() else []:
        text = pidfile.read_text(encoding="utf-8").strip()
        if text.isdigit():
            found.append(int(text))
    return found


def _end_processes(pids: list[int], grace_s: float = 2.0) -> list[int]:
    ended = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            ended.append(pid)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(process_alive(p) for p in ended):
        time.sleep(0.05)
    for pid in ended:
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return ended


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def root_links(prefix: str = PREFIX) -> list[str]:
    """Links in the root namespace named as the lab names its objects, ``PREFIX-...``
    (the lab creates none there normally). Nothing else: neither another instance's
    (``cnl.NAME-...``) nor a link that merely starts with the same letters (``cnlssh-br``
    of the tests' emulated nodes, or a user's), which ``down`` would otherwise delete."""
    out = sh.run(["ip", "-o", "link", "show"]).stdout
    names = []
    for line in out.splitlines():
        name = line.split(": ", 2)[1].split("@")[0]
        if name == prefix or name.startswith(f"{prefix}-"):
            names.append(name)
    return sorted(set(names))


def instances() -> list[str]:
    """Every lab instance with something left on this machine: namespaces or a state
    directory ("" is the default lab)."""
    found = set()
    for name in hosts.existing_netns():
        head = name.split("-", 1)[0]
        if head == PREFIX or head.startswith(f"{PREFIX}."):
            found.add(instance_of(head))
    base = paths.lab_state_dir()
    for entry in base.glob("lab*") if base.is_dir() else []:
        if entry.is_dir() and (entry.name == "lab" or entry.name.startswith("lab.")):
            found.add(entry.name.removeprefix("lab").removeprefix("."))
    return sorted(found)


def family(instance: str) -> list[str]:
    """An instance and the mode labs a study keeps in it (NAME.K, or K for the default
    lab): what ``lab down --lab netns:NAME`` removes."""
    def belongs(other: str) -> bool:
        if instance == "":
            return other == "" or other.isdigit()
        return other == instance or other.startswith(f"{instance}.")
    return [i for i in instances() if belongs(i)]


def down(prefix: str = PREFIX) -> TeardownReport:
    """Remove every namespace, process, link and state file of the lab; idempotent, crash-safe.

    Finds objects by name prefix and by pid files, not only from the saved
    plan, so it also cleans up after a build that died half-way.
    """
    builders = _stop_builders(prefix)
    namespaces = lab_namespaces(prefix)
    pids = sorted({p for ns in namespaces for p in _namespace_pids(ns)} |
                  set(_pidfile_pids(prefix)))
    ended = _end_processes(pids)
    for ns in namespaces:
        sh.run(["ip", "netns", "del", ns], check=False)
    links = root_links(prefix)
    for link in links:
        sh.run(["ip", "link", "del", link], check=False)
    state = state_dir_of(instance_of(prefix))
    existed = state.exists()
    shutil.rmtree(state, ignore_errors=True)
    return TeardownReport(namespaces, sorted(set(ended) | set(builders)), links, existed)


def down_all() -> list[TeardownReport]:
    """Every instance down (tests, and ``lab down --all``)."""
    return [down(prefix_of(i)) for i in instances()] or [down()]


def leftovers(prefix: str | None = PREFIX) -> dict[str, list[str]]:
    """What of a lab still exists (empty lists = clean); ``None``: of every instance.
    Used by tests and ``doctor``."""
    if prefix is None:
        merged: dict[str, list[str]] = {}
        for instance in instances() or [""]:
            for key, values in leftovers(prefix_of(instance)).items():
                merged.setdefault(key, []).extend(values)
        return merged
    procs = [str(p) for ns in lab_namespaces(prefix) for p in _namespace_pids(ns)]
    state = state_dir_of(instance_of(prefix))
    return {
        "namespaces": lab_namespaces(prefix),
        "processes": procs,
        "root_links": root_links(prefix),
        "state": [str(state)] if state.exists() else [],
    }
