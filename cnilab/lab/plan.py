"""The lab plan: names and addresses of every emulated host and pod.

The plan is computed once from (cni, mode, hosts, pods per host), stored as
JSON in the lab state directory and passed to the playbook, so that ``up``,
``status``, ``down`` and the benchmark all agree on what exists.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnilab import paths
from cnilab.errors import InputError
from cnilab.modes import Mode, catalog, get_mode
from cnilab.network import HOSTS_RANGE, POD_CIDR, PODS_PER_HOST_RANGE, SERVICE_CIDR

PREFIX = "cnl"          # every namespace, link and file of the lab starts with this
UNDERLAY_CIDR = "10.99.0.0/24"
# Labs can stand side by side as named instances: the default lab is "" (names
# cnl-h1, ...); instance NAME has names cnl.NAME-h1, ... and its own state directory,
# lock and daemons. A study keeps each mode in a sub-instance NAME.K (K: the matrix
# entry), or K for the default instance. Names are short: a host's interface names
# carry no instance, but namespace and file names do.
INSTANCE_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")        # what a user may name
_ANY_INSTANCE_RE = re.compile(r"^(?:[a-z][a-z0-9]{0,5}(?:\.[0-9]{1,2})?|[0-9]{1,2})$")


def check_instance(name: str, *, user: bool = True) -> str:
    """``name`` if it is a valid instance name; InputError otherwise."""
    if name == "" or (INSTANCE_RE if user else _ANY_INSTANCE_RE).match(name):
        return name
    raise InputError(f"lab instance {name!r}: a letter then up to 5 lowercase letters or "
                     "digits (e.g. netns:study1)")


def prefix_of(instance: str) -> str:
    """The name prefix of an instance's namespaces and files."""
    return PREFIX if not instance else f"{PREFIX}.{instance}"


def instance_of(prefix: str) -> str:
    return "" if prefix == PREFIX else prefix.removeprefix(f"{PREFIX}.")


def mode_instance(instance: str, slot: int) -> str:
    """The sub-instance that holds matrix entry ``slot`` of a study run in ``instance``."""
    return f"{instance}.{slot}" if instance else str(slot)


def state_dir_of(instance: str) -> Path:
    return paths.lab_state_dir() / ("lab" if not instance else f"lab.{instance}")


@dataclass(frozen=True)
class PodPlan:
    name: str          # e.g. h1-p2
    netns: str         # e.g. cnl-h1-p2
    host: str          # e.g. h1
    container_id: str
    ifname: str = "eth0"


@dataclass(frozen=True)
class HostPlan:
    name: str          # e.g. h1
    index: int         # 1-based
    netns: str         # e.g. cnl-h1
    underlay_ip: str
    underlay_if: str
    pod_subnet: str
    pods: tuple[PodPlan, ...] = field(default_factory=tuple)

    def block_address(self, offset: int = 0) -> str:
        """An address of this host's pod block (``offset`` 0 is the network address)."""
        return str(ipaddress.ip_network(self.pod_subnet).network_address + offset)

    def mac(self, prefix: str) -> str:
        """A stable, locally administered MAC for one of this host's devices:
        ``prefix`` (four octets naming the device) plus the host index."""
        return f"{prefix}:00:{self.index:02x}"


@dataclass(frozen=True)
class LabPlan:
    """Everything needed to build, inspect and tear down one lab."""

    cni: str
    mode: str
    hosts: tuple[HostPlan, ...]
    prefix: str = PREFIX
    underlay_cidr: str = UNDERLAY_CIDR
    pod_cidr: str = POD_CIDR
    service_cidr: str = SERVICE_CIDR
    switch_netns: str | None = None   # set when the underlay is a switch (> 2 hosts)
    policy: bool = False              # network policy enforcement on (modes that offer it)
    instance: str = ""                # "" = the default lab; see INSTANCE_RE
    tunnel_offload: bool = True       # the underlay devices segment tunnel packets
                                      # (cnilab.lab.offload); off: the kernel does

    @property
    def mode_info(self) -> Mode:
        return get_mode(self.cni, self.mode)

    def peers(self, host: HostPlan) -> list[HostPlan]:
        """Every host but ``host``: what an agent on ``host`` programs entries for."""
        return [h for h in self.hosts if h.name != host.name]

    def host(self, name: str) -> HostPlan:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def pod(self, name: str) -> PodPlan:
        for h in self.hosts:
            for p in h.pods:
                if p.name == name:
                    return p
        raise KeyError(name)

    def state_dir(self) -> Path:
        return state_dir_of(self.instance)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LabPlan:
        hosts = tuple(
            HostPlan(**{**h, "pods": tuple(PodPlan(**p) for p in h["pods"])}) for h in data["hosts"]
        )
        return LabPlan(**{**data, "hosts": hosts})


def make_plan(cni: str, mode: str, hosts: int = 2, pods_per_host: int = 2,
              policy: bool = False, instance: str = "", tunnel_offload: bool = True) -> LabPlan:
    """Compute names and addresses; rejects unknown modes and out-of-range sizes.
    Instances differ in names only: their addresses live in their own namespaces."""
    check_instance(instance, user=False)
    prefix = prefix_of(instance)
    try:
        info = get_mode(cni, mode)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    if policy not in info.policy_options:
        with_policy = ", ".join(m.key for modes in catalog().values() for m in modes.values()
                                if True in m.policy_options and m.lab_implemented)
        raise InputError(f"{cni}/{mode} has no network policy setting 'on' "
                         f"(modes with policy: {with_policy})")
    if tunnel_offload not in info.offload_options:
        raise InputError(f"{cni}/{mode} sends no UDP tunnel packets: it has no tunnel "
                         "offload to switch off")
    low, high = HOSTS_RANGE
    if not low <= hosts <= high:
        raise InputError(f"--hosts must be from {low} to {high}, got {hosts}")
    low, high = PODS_PER_HOST_RANGE
    if not low <= pods_per_host <= high:
        raise InputError(f"--pods-per-host must be from {low} to {high}, got {pods_per_host}")
    underlay = list(ipaddress.ip_network(UNDERLAY_CIDR).hosts())
    # Host i gets the i-th /24 of the pod CIDR; a mode with smaller blocks (Calico's
    # /26) takes the first block of that /24, so addresses stay readable per host.
    pod_net = ipaddress.IPv4Network(POD_CIDR)
    per_host = list(pod_net.subnets(new_prefix=24))
    host_plans = []
    for i in range(1, hosts + 1):
        name = f"h{i}"
        pods = tuple(
            PodPlan(name=f"{name}-p{j}", netns=f"{prefix}-{name}-p{j}", host=name,
                    # CNI caches results by network name and container id, host-wide:
                    # the instance's prefix keeps them apart
                    container_id=f"{prefix}{i:02d}{j:04d}")
            for j in range(1, pods_per_host + 1)
        )
        host_plans.append(HostPlan(
            name=name, index=i, netns=f"{prefix}-{name}",
            underlay_ip=str(underlay[9 + i]), underlay_if="eth0",
            pod_subnet=str(next(per_host[i].subnets(new_prefix=info.pod_block_prefix))),
            pods=pods,
        ))
    switch = f"{prefix}-sw" if hosts > 2 else None
    return LabPlan(cni=cni, mode=mode, hosts=tuple(host_plans), switch_netns=switch,
                   policy=policy, instance=instance, prefix=prefix,
                   tunnel_offload=tunnel_offload)


def saved_plan_path(instance: str = "") -> Path:
    return state_dir_of(instance) / "plan.json"


def load_saved_plan(instance: str = "") -> LabPlan | None:
    """The plan of the instance's lab that is up (or was being built), if any."""
    path = saved_plan_path(instance)
    if not path.is_file():
        return None
    return LabPlan.from_dict(json.loads(path.read_text(encoding="utf-8")))
