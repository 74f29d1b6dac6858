"""``cnilab cluster up|reset|collect``: the real-cluster playbooks, run on an inventory.

Why a module of its own: Vagrant, bare metal, CloudLab and Chameleon nodes all take
this one path (an inventory in, playbooks through ansible-runner, a record directory
out), so what is checked before anything touches a machine, and what is kept after,
is the same everywhere. Every operation writes a directory of its own:

    <out>/cluster-<action>-<timestamp>/
        operation.json        what ran, on which inventory and profile, and how it ended
        inventory.yml         the inventory as given (it names the machines)
        preflight.txt         `up` only: the SSH preflight, one line per check
        nodes/<host>/         collect: facts.json and raw outputs per node
        node-reset/<host>.txt reset: purge actions and remaining differences per node
        ansible/              ansible-runner's artifacts (environment scrubbed)
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnilab import paths
from cnilab.ansible_engine import PlaybookFailed, Progress, run_playbook
from cnilab.cluster import hostkeys
from cnilab.cluster.preflight import Check, preflight
from cnilab.cni.base import policy_options
from cnilab.errors import CnilabError, InputError
from cnilab.inventory import Node, load_inventory
from cnilab.pins import load_pins
from cnilab.progress import Display
from cnilab.rundir import atomic_write_json

# action -> playbooks, in order
PLAYBOOKS = {
    "up": ("cluster.yml", "collect.yml"),
    "reset": ("reset.yml",),
    "collect": ("collect.yml",),
    # a CNI on a provisioned cluster, and the full switch to another one
    "deploy": ("cni.yml", "collect.yml"),
    "switch": ("reset.yml", "cluster.yml", "cni.yml", "collect.yml"),
}
NEEDS_CNI = ("deploy", "switch")


@dataclass(frozen=True)
class CniChoice:
    """The plugin and mode a deploy or switch installs (the shared CNI interface)."""

    cni: str
    mode: str
    policy: bool = False
    replace_kube_proxy: bool = False
    policy_engine: bool = True     # False: cilium's policyEnforcementMode never

    @classmethod
    def of(cls, cni: str, mode: str, policy: str, replace_kube_proxy: bool) -> CniChoice:
        """From the command line's ``--policy on|off|never``."""
        options = policy_options(policy, replace_kube_proxy)
        return cls(cni, mode, options.policy, replace_kube_proxy, options.policy_engine)

    def extravars(self) -> dict[str, Any]:
        return {"cnilab_cni": self.cni, "cnilab_cni_mode": self.mode,
                "cnilab_cni_policy": self.policy,
                "cnilab_cni_policy_engine": self.policy_engine,
                "cnilab_cni_replace_kube_proxy": self.replace_kube_proxy}


@dataclass
class Operation:
    action: str
    inventory: Path
    profile: str
    directory: Path
    nodes: list[Node]
    cni: CniChoice | None = None


def kubernetes_profile(profile: str) -> dict[str, Any]:
    """A pin profile of versions/kubernetes.yml, or the one-line error naming the choices."""
    profiles = load_pins().kubernetes_profiles
    if profile not in profiles:
        raise InputError(f"--profile {profile}: not in versions/kubernetes.yml "
                         f"({', '.join(profiles)})")
    return profiles[profile]


def cgroup_required(profile: str) -> str:
    """The cgroup version the profile's kubelet needs ("2", or "any")."""
    return str(kubernetes_profile(profile).get("cgroup", "2"))


def check_cni(choice: CniChoice) -> None:
    """A plugin cnilab can install, in one of its modes, with settings it offers."""
    from cnilab.cni.registry import plugin_for

    plugin = plugin_for(choice.cni, choice.mode)
    if not choice.policy_engine and not plugin.facts.switches_policy_engine:
        raise InputError(f"--policy never: {choice.cni}'s policy engine cannot be switched "
                         "off; it takes --policy on or off")


def prepare(action: str, inventory: Path, profile: str, out: Path | None,
            cni: CniChoice | None = None) -> Operation:
    """Check the input (inventory, profile, plugin and mode) and create the record
    directory; nothing else is written when the input is bad."""
    if action not in PLAYBOOKS:
        raise InputError(f"cluster action '{action}': one of {', '.join(PLAYBOOKS)}")
    if action in NEEDS_CNI:
        if cni is None:
            raise InputError(f"cnilab {action} needs --cni and --mode")
        check_cni(cni)
    if not inventory.is_file():
        raise InputError(f"{inventory}: no such inventory file")
    nodes = load_inventory(inventory)
    kubernetes_profile(profile)
    parent = out or paths.default_runs_dir()
    directory = parent / f"cluster-{action}-{time.strftime('%Y%m%dT%H%M%S')}"
    suffix = 1
    while directory.exists():
        suffix += 1
        directory = parent / f"cluster-{action}-{time.strftime('%Y%m%dT%H%M%S')}-{suffix}"
    directory.mkdir(parents=True)
    shutil.copyfile(inventory, directory / "inventory.yml")
    return Operation(action, inventory.resolve(), profile, directory, nodes, cni)


def verify_host_keys(nodes: list[Node], timeout: float = 10.0) -> None:
    """Record the SSH host key of every node met for the first time, and refuse (one
    line per node) any whose key changed, before a playbook touches them. A node that
    cannot be reached is left to the preflight or Ansible, which name why."""
    import paramiko

    from cnilab.cluster.ssh import connect

    changed = []
    for node in nodes:
        if node.known_hosts is None:
            continue
        try:
            connect(node, timeout).close()
        except hostkeys.HostKeyChanged as exc:
            changed.append(str(exc))
        except (OSError, paramiko.SSHException):
            pass
    if changed:
        raise hostkeys.HostKeyChanged("\n".join(changed))


def run(operation: Operation, *, skip_preflight: bool = False, quiet: bool = False,
        extravars: dict[str, Any] | None = None, display: Display | None = None) -> list[Check]:
    """Run the action's playbooks; raise PlaybookFailed / CnilabError on failure. The
    record (operation.json) is written at the start and rewritten at the end. Progress:
    on a display of the operation's own, a bar over the playbooks with the current task
    under it (it comes down before any error); on a run's ``display`` (a mode switch in a
    study), the task line alone, under the run's own bar."""
    if display is None:
        with Display(quiet=quiet, every=1) as own:
            return _run(operation, skip_preflight, quiet, extravars, own, bar=True)
    return _run(operation, skip_preflight, quiet, extravars, display, bar=False)


def _run(operation: Operation, skip_preflight: bool, quiet: bool,
         extravars: dict[str, Any] | None, display: Display, bar: bool) -> list[Check]:
    record: dict[str, Any] = {
        "action": operation.action, "inventory": str(operation.inventory),
        "profile": operation.profile, "hosts": [n.name for n in operation.nodes],
        "cni": operation.cni.extravars() if operation.cni else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "status": "running",
        "playbooks": []}
    atomic_write_json(operation.directory / "operation.json", record)
    checks: list[Check] = []
    try:
        verify_host_keys(operation.nodes)
        if operation.action in ("up", "switch") and not skip_preflight:
            display.activity(f"preflight: {len(operation.nodes)} hosts over SSH")
            checks = preflight(operation.nodes,
                               cgroup_required=cgroup_required(operation.profile))
            (operation.directory / "preflight.txt").write_text(
                "\n".join(c.render() for c in checks) + "\n", encoding="utf-8")
            failed = [c for c in checks if not c.ok]
            if failed:
                raise CnilabError("preflight failed (nothing was changed on the hosts):\n" +
                                  "\n".join(c.render() for c in failed))
        if bar:
            display.start(len(PLAYBOOKS[operation.action]), 0,
                          f"{operation.action}: {PLAYBOOKS[operation.action][0]}")
        for playbook in PLAYBOOKS[operation.action]:
            result = run_playbook(
                playbook, private_data_dir=operation.directory / "ansible",
                inventory=str(operation.inventory),
                progress=Progress(quiet=quiet, display=display),
                env=hostkeys.ansible_environment(hostkeys.known_hosts_file(operation.inventory)),
                extravars={"cnilab_profile": operation.profile,
                           "cnilab_artifact_dir": str(operation.directory),
                           **(operation.cni.extravars() if operation.cni else {}),
                           **(extravars or {})})
            record["playbooks"].append({"playbook": playbook, "status": result.status,
                                        "changed": result.changed_count()})
            if bar:
                display.advance(f"{operation.action}: {playbook} done")
        record["status"] = "successful"
    except PlaybookFailed as exc:
        record["playbooks"].append({"playbook": exc.result.playbook,
                                    "status": exc.result.status})
        record["status"] = "failed"
        raise
    except BaseException:
        record["status"] = "failed"
        raise
    finally:
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_json(operation.directory / "operation.json", record)
    return checks
