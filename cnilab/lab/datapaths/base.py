"""The shared interface between the lab core and each plugin's datapath module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from cnilab.errors import InputError
from cnilab.lab.plan import HostPlan, LabPlan

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

    @abstractmethod
    def pod_conflist(self, host: HostPlan) -> dict[str, Any]:
        """The CNI network configuration list a runtime on ``host`` would use."""

    def pod_mtu(self) -> int:
        return self.plan.mode_info.mtu

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
