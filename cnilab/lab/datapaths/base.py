"""The shared interface between the lab core and each plugin's datapath module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from cnilab.errors import InputError
from cnilab.lab import cni
from cnilab.lab.plan import HostPlan, LabPlan, PodPlan

CNI_VERSION = "1.0.0"

_REGISTRY: dict[tuple[str, str], type[Datapath]] = {}


class Datapath(ABC):
    """How one (plugin, mode) wires a host: devices, peer routes, the pod network config."""

    cni: ClassVar[str]
    mode: ClassVar[str]

    def __init__(self, plan: LabPlan) -> None:
        self.plan = plan

    @abstractmethod
    def build_host(self, host: HostPlan) -> bool:
        """Create the mode's host devices and rules; return whether anything changed."""

    @abstractmethod
    def connect_peers(self, host: HostPlan) -> bool:
        """Program what the plugin's agent programs for every other host."""

    def pod_conflist(self, host: HostPlan) -> dict[str, Any]:
        """The CNI network configuration list a runtime on ``host`` would use."""
        raise NotImplementedError(f"{self.cni}/{self.mode} attaches pods itself")

    def attach_pod(self, host: HostPlan, pod: PodPlan) -> dict[str, Any]:
        """Attach one pod (its namespace exists); returns the CNI-shaped result.

        Default: what a container runtime does with the plugin's conflist.
        """
        cni.add_loopback(host_netns=host.netns, pod_netns=pod.netns,
                         container_id=pod.container_id, cni_version=CNI_VERSION)
        return cni.add_list(self.pod_conflist(host), host_netns=host.netns,
                            pod_netns=pod.netns, container_id=pod.container_id,
                            ifname=pod.ifname)

    def detach_pod(self, host: HostPlan, pod: PodPlan) -> None:
        """CNI DEL for one pod, as the runtime runs it when the pod is removed
        (releases its address; the namespace is deleted by the caller)."""
        cni.del_list(self.pod_conflist(host), host_netns=host.netns, pod_netns=pod.netns,
                     container_id=pod.container_id, ifname=pod.ifname)
        cni.del_loopback(host_netns=host.netns, pod_netns=pod.netns,
                         container_id=pod.container_id, cni_version=CNI_VERSION)

    def after_pods(self, host: HostPlan, addresses: dict[str, str]) -> bool:
        """Per-endpoint programming once every pod exists (eBPF, policy chains).

        ``addresses`` maps pod name to IPv4 address for the whole lab.
        """
        return False

    def add_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        """What the plugin's agent programs when one more pod starts on a running host
        (pod start-up measurements); default: nothing beyond the CNI ADD."""
        return None

    def remove_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        """Undo ``add_endpoint`` when that pod is removed."""
        return None

    def pod_mtu(self) -> int:
        return self.plan.mode_info.mtu

    def host_details(self, host: HostPlan) -> dict[str, Any]:
        """Mode-specific live state for ``lab status`` (e.g. BGP sessions)."""
        return {}

    def notes(self) -> list[str]:
        """Extra fidelity remarks shown by ``lab up`` and reports (beyond the mode table)."""
        return []


def register(cls: type[Datapath]) -> type[Datapath]:
    """Class decorator: make a datapath available under (cls.cni, cls.mode)."""
    _REGISTRY[(cls.cni, cls.mode)] = cls
    return cls


def datapath_for(plan: LabPlan) -> Datapath:
    """The datapath implementation for the plan's mode, or a clear refusal."""
    try:
        cls = _REGISTRY[(plan.cni, plan.mode)]
    except KeyError:
        built = ", ".join(f"{c}/{m}" for c, m in sorted(_REGISTRY))
        raise InputError(
            f"the netns lab cannot build {plan.cni}/{plan.mode} yet (built: {built})"
        ) from None
    return cls(plan)


def implemented_modes() -> list[tuple[str, str]]:
    return sorted(_REGISTRY)


DatapathFactory = Callable[[LabPlan], Datapath]
