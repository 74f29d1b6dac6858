"""The interface every plugin implements, and the settings patches receive."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from cnilab.errors import InputError
from cnilab.modes import Mode, PluginFacts, catalog, plugin_facts

Document = dict[str, Any]


@dataclass(frozen=True)
class ClusterNetwork:
    """What every plugin is configured with, whatever its own defaults."""

    pod_cidr: str                       # kubeadm's podSubnet, forced on every plugin
    node_ips: tuple[str, ...]           # the inventory's node_ip of every host
    mtu: int | None = None              # None: the plugin derives it (recorded after)
    node_mtu: int | None = None         # the node_ip interface's MTU, when read from a node

    def node_ip_regex(self) -> str:
        """A regex that matches exactly the node IPs (for interface selectors that take
        an IP pattern): the interface carrying node_ip, whatever it is named per node."""
        return "^(" + "|".join(re.escape(ip) for ip in self.node_ips) + ")$"


@dataclass(frozen=True)
class ModeOptions:
    """Settings of a mode that are not the datapath itself."""

    policy: bool = False                # network policies enforced (the study's "on")
    replace_kube_proxy: bool = False    # the plugin serves Services instead of kube-proxy
    # False: the plugin's policy engine switched off altogether (Cilium's
    # policyEnforcementMode never), a setting apart from "no policies" (policy False)
    policy_engine: bool = True

    @property
    def label(self) -> str:
        """How reports and manifest headers name the policy setting."""
        if not self.policy_engine:
            return "policy engine off"
        return "policy on" if self.policy else "policy off"


POLICY_CHOICES = {"on": (True, True), "off": (False, True), "never": (False, False)}


def policy_options(choice: str, replace_kube_proxy: bool = False) -> ModeOptions:
    """``--policy on|off|never`` -> ModeOptions (never: the policy engine switched off)."""
    policy, engine = POLICY_CHOICES[choice]
    return ModeOptions(policy=policy, replace_kube_proxy=replace_kube_proxy,
                       policy_engine=engine)


DEFAULT_OPTIONS = ModeOptions()


def env_list(container: Document) -> list[Document]:
    """A container's env list (created when upstream has none)."""
    env = container.get("env")
    if not isinstance(env, list):
        env = container["env"] = []
    return env


def set_env(container: Document, name: str, value: str) -> None:
    """Set one literal env var, replacing any definition of it (valueFrom included)."""
    env = env_list(container)
    env[:] = [e for e in env if e.get("name") != name]
    env.append({"name": name, "value": value})


def set_flag(args: list[str], flag: str, value: str) -> list[str]:
    """``--flag=value`` replacing any earlier ``--flag`` / ``--flag=...``."""
    kept = [a for a in args if a != flag and not a.startswith(flag + "=")]
    return [*kept, f"{flag}={value}"]


def find(documents: list[Document], kind: str, name: str, where: str) -> Document:
    """The one document of ``kind``/``name``; a clear error when upstream moved it."""
    found = [d for d in documents if d.get("kind") == kind
             and d.get("metadata", {}).get("name") == name]
    if len(found) != 1:
        raise InputError(f"{where}: expected one {kind} '{name}', found {len(found)}: the "
                         "upstream file changed shape; update the patcher")
    return found[0]


def containers(document: Document, name: str) -> list[Document]:
    """Containers (and init containers) called ``name`` in a workload's pod template."""
    spec = document.get("spec", {}).get("template", {}).get("spec", {})
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or []
            if c.get("name") == name]


def flatten(documents: list[Any]) -> list[Document]:
    """Documents with ``kind: List`` expanded (weave ships its objects that way)."""
    out: list[Document] = []
    for document in documents:
        if not document:
            continue
        if document.get("kind") == "List":
            out.extend(flatten(document.get("items") or []))
        else:
            out.append(document)
    return out


class Plugin(ABC):
    """A CNI plugin's real-cluster knowledge: how its upstream install file is patched
    for a mode, and how a node shows which mode runs. What a mode *is* (its modes,
    ports, VNIs) and the plugin's cluster facts come from the catalog
    (cnilab/catalog/modes.yml), never from the subclass."""

    name: str

    @property
    def facts(self) -> PluginFacts:
        return plugin_facts()[self.name]

    def modes(self) -> tuple[str, ...]:
        """Modes of the study this plugin can be installed in."""
        return tuple(catalog()[self.name])

    def mode(self, mode: str) -> Mode:
        return catalog()[self.name][mode]

    def skips_kube_proxy(self, mode: str, options: ModeOptions) -> bool:
        """Whether kubeadm must skip its kube-proxy addon for this mode."""
        return options.replace_kube_proxy and self.facts.replaces_kube_proxy

    def require(self, mode: str, options: ModeOptions) -> None:
        """The common refusals: a mode the plugin does not have, kube-proxy replacement
        or a switched-off policy engine asked of a plugin that does not offer it."""
        if mode not in self.modes():
            raise InputError(f"{self.name} mode '{mode}': one of {', '.join(self.modes())}")
        if options.replace_kube_proxy and not self.facts.replaces_kube_proxy:
            raise InputError(f"{self.name}: kube-proxy replacement is not a mode of the "
                             "study for this plugin")
        if not options.policy_engine and not self.facts.switches_policy_engine:
            raise InputError(f"{self.name}: its policy engine cannot be switched off "
                             "(--policy never); use --policy off (no policies)")

    @abstractmethod
    def patch(self, documents: list[Document], mode: str, network: ClusterNetwork,
              version: str, options: ModeOptions = DEFAULT_OPTIONS) -> list[Document]:
        """The upstream documents, patched structurally for ``mode``."""

    @abstractmethod
    def mode_problems(self, mode: str, links: list[Document], routes: list[Document],
                      peers: dict[str, tuple[str, str]], pod_cidr: str) -> list[str]:
        """What in one node's ``ip -j -d link`` / ``ip -j route`` shows that ``mode`` is not
        the datapath running; ``peers`` maps every other node to (node_ip, podCIDR).
        Empty: the intended mode is the one running."""

    def config_problems(self, mode: str, version: str, options: ModeOptions,
                        config: dict[str, str]) -> list[str]:
        """What the agent's own configuration, read from the cluster, says against the
        mode (plugins that have such a configuration); empty by default."""
        return []
