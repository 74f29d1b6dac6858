"""The netns lab as a benchmark target: built and removed through the lab playbook."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnilab.ansible_engine import Progress, run_playbook
from cnilab.bench.executor import Endpoint, Executor, NetnsExecutor
from cnilab.errors import CnilabError, InputError
from cnilab.lab import core, idle, kube_proxy, lock, offload, rules, startup, status
from cnilab.lab.datapaths import datapath_for
from cnilab.lab.plan import LabPlan, check_instance, make_plan, mode_instance, prefix_of
from cnilab.spec import ModeRef, Spec
from cnilab.targets.base import Target

PLAYBOOK = "lab-netns.yml"
LAB_NOTE = ("The netns lab is an emulation: hosts and pods are network namespaces on one "
            "machine; kernel objects, CNI reference plugins and routing daemons are real, the "
            "CNI agents and Kubernetes are not run, and all 'hosts' share one CPU set and one "
            "kernel.")


class NetnsTarget(Target):
    kind = "netns"
    emulation = True

    def __init__(self, hosts: int = 2, pods_per_host: int = 4,
                 progress: Progress | None = None, replace_lab: bool = False,
                 instance: str = "") -> None:
        self.instance = check_instance(instance, user=False)
        self.hosts = hosts
        self.pods_per_host = pods_per_host
        self.plan: LabPlan | None = None
        self.progress = progress or Progress()
        # a lab someone else built (`lab up`, another run) is refused unless replace_lab
        self.replace_lab = replace_lab
        self.owner = f"pid {os.getpid()}"
        self.idle: idle.IdleCpu | None = None

    @contextlib.contextmanager
    def session(self, command: str, owner: str) -> Iterator[None]:
        """The lab's lock for the whole run (one owner at a time), and the run's name
        on what it builds."""
        with lock.holding(command, self.instance):
            self.owner = owner
            yield

    def side_by_side(self) -> bool:
        return True

    def for_mode(self, mode: ModeRef, slot: int) -> NetnsTarget:
        """The mode's own lab instance (NAME.K): a study keeps every mode up at once."""
        twin = copy.copy(self)     # the same topology, options and owner (and subclass)
        twin.instance = mode_instance(self.instance, slot)
        twin.plan, twin.idle = None, None
        return twin

    def describe(self) -> dict[str, Any]:
        return {"instance": self.instance} if self.instance else {}

    def _make_plan(self, mode: ModeRef) -> LabPlan:
        return make_plan(mode.cni, mode.mode, self.hosts, self.pods_per_host, mode.policy,
                         self.instance, mode.offload)

    def preflight(self, spec: Spec) -> None:
        """Root and the lab itself, checked on the first mode this machine can build.
        Modes the kernel cannot build are skipped by the engine and reported, not fatal."""
        from cnilab.errors import CapabilityError

        problems = []
        for ref in spec.matrix:
            try:
                core.check_buildable(self._make_plan(ref))
                return
            except CapabilityError as exc:
                problems.append(str(exc))
                if "needs root" in str(exc):
                    raise
        raise CapabilityError("no mode of this spec can be built here: " + "; ".join(problems))

    def up(self, mode: ModeRef, *, workdir: Path) -> None:
        _build([(self, mode)], workdir, f"up-{mode.cni}-{mode.mode}")

    def up_side_by_side(self, modes: list[tuple[ModeRef, int]], *,
                        workdir: Path) -> dict[ModeRef, Target]:
        """Every mode in its own instance (``for_mode``), built in one playbook run:
        Ansible's start-up is paid once for the study, not once per mode."""
        twins = [(self.for_mode(ref, slot), ref) for ref, slot in modes]
        _build(twins, workdir, "up-side-by-side")
        return {ref: twin for twin, ref in twins}

    def down_side_by_side(self, targets: list[Target], *, workdir: Path) -> None:
        prefixes = [prefix_of(t.instance) for t in targets if isinstance(t, NetnsTarget)]
        run_playbook(PLAYBOOK, private_data_dir=workdir,
                     extravars={"lab_netns_state": "absent", "lab_netns_prefixes": prefixes},
                     progress=self.progress, ident="down-side-by-side")
        for target in targets:
            if isinstance(target, NetnsTarget):
                target.plan = None

    def cannot_measure(self, suite: str) -> str | None:
        if suite == "agent-memory":
            return ("the netns lab runs no CNI agents (it builds their datapath itself); "
                    "their memory is measured on clusters")
        return None

    def check_free(self, spec: Spec) -> None:
        """The instances this run's modes would use, refused before the run directory is
        written if another command's lab is up in one of them."""
        for slot, ref in enumerate(spec.matrix, start=1):
            self.for_mode(ref, slot)._refuse_foreign()

    def _refuse_foreign(self) -> None:
        if not core.lab_namespaces(prefix_of(self.instance)):
            return
        built_by = lock.owner(self.instance)
        if built_by != self.owner and not self.replace_lab:
            study = self.instance.split(".")[0] if not self.instance.isdigit() else ""
            where = f" --lab netns:{study}" if study else ""
            raise InputError(f"a netns lab built by {built_by or 'another command'} is up; "
                             f"bring it down (`cnilab lab down{where}`) or pass "
                             "--replace-lab")

    def _clear_the_way(self, plan: LabPlan, workdir: Path) -> None:
        """A lab already up where this one goes: replaced if this run built it (a resume)
        or --replace-lab says so, refused otherwise."""
        if not core.lab_namespaces(plan.prefix):
            return
        self._refuse_foreign()
        self.down(workdir=workdir)

    def unavailable(self, mode: ModeRef) -> str | None:
        """A mode the kernel or the lab cannot build; lacking root is not a per-mode matter
        and still stops the run."""
        plan = self._make_plan(mode)
        if os.geteuid() != 0:
            return None   # up() refuses with the reason
        try:
            core.check_buildable(plan)
        except InputError as exc:
            return str(exc)
        return None

    def down(self, *, workdir: Path | None = None) -> None:
        prefix = prefix_of(self.instance)
        if workdir is None:
            core.down(prefix)
        else:
            run_playbook(PLAYBOOK, private_data_dir=workdir,
                         extravars={"lab_netns_state": "absent", "lab_netns_prefix": prefix},
                         progress=self.progress, ident="down")
        self.plan = None

    def _plan(self) -> LabPlan:
        if self.plan is None:
            raise CnilabError("the netns lab is not up")
        return self.plan

    def _pod(self, host_index: int, pod_index: int) -> Endpoint:
        plan = self._plan()
        host = plan.hosts[host_index]
        p = host.pods[pod_index]
        return Endpoint(p.name, host.name, core.pod_address(plan, p), "pod", p.netns)

    def endpoints(self, placement: str) -> tuple[Endpoint, Endpoint]:
        plan = self._plan()
        h1, h2 = plan.hosts[0], plan.hosts[1]
        pod = self._pod
        if placement == "intra-host":
            return pod(0, 0), pod(0, 1)
        if placement == "inter-host":
            return pod(0, 0), pod(1, 0)
        if placement == "service":
            backend = pod(1, 0)
            vip = kube_proxy.service_ip(plan)
            return pod(0, 0), Endpoint(f"svc/bench->{backend.name}", backend.host, vip,
                                       "service", backend.locator, bind_address=backend.address)
        if placement in ("underlay", "host-network"):
            # A hostNetwork pod runs in its node's network namespace, which in the
            # lab is the emulated host itself: the same path as the underlay.
            return (Endpoint(h1.name, h1.name, h1.underlay_ip, "host", h1.netns),
                    Endpoint(h2.name, h2.name, h2.underlay_ip, "host", h2.netns))
        raise InputError(f"the netns lab has no placement '{placement}'")

    def background_endpoints(self, placement: str) -> tuple[Endpoint, Endpoint]:
        plan = self._plan()
        if placement in ("underlay", "host-network"):
            return self.endpoints(placement)   # hosts have one namespace each: other ports
        if placement == "intra-host":
            if len(plan.hosts[0].pods) < 4:
                raise InputError("background load at intra-host needs 4 pods per host")
            return self._pod(0, 2), self._pod(0, 3)
        return self._pod(0, 1), self._pod(1, 1)   # inter-host, and beside a Service

    def set_path_rules(self, count: int, shape: str) -> int:
        plan = self._plan()
        loaded = 0
        for host in plan.hosts:
            if count == 0:
                rules.remove_rules(host.netns)
            else:
                loaded = rules.add_rules(host.netns, count, shape=shape)
        return loaded

    def start_pods(self, count: int, attempt: int) -> dict[str, Any]:
        return startup.measure_startup(self._plan(), count, attempt)

    def executor(self) -> Executor:
        return NetnsExecutor()

    def snapshot(self) -> dict[str, Any]:
        snap = status.lab_status(self._plan())
        if self.idle is not None:
            snap["idle_cpu"] = self.idle.as_record()
        return snap

    def fidelity(self) -> list[str]:
        plan = self._plan()
        return [LAB_NOTE, plan.mode_info.fidelity_for(plan.policy), *datapath_for(plan).notes(),
                *offload.note(plan)]


def _build(pairs: list[tuple[NetnsTarget, ModeRef]], workdir: Path, ident: str) -> None:
    """Build each target's lab for its mode in one playbook run, then check that each idle
    lab's machinery stays off the machine (all in one window). A build that fails or is
    interrupted half-way leaves none of the labs behind."""
    plans = []
    for target, mode in pairs:
        plan = target._make_plan(mode)
        core.check_buildable(plan)   # refuse before touching anything
        target._clear_the_way(plan, workdir)
        plans.append(plan)
    try:
        run_playbook(PLAYBOOK, private_data_dir=workdir,
                     extravars={"lab_netns_state": "present",
                                "lab_netns_plans": [plan.to_dict() for plan in plans]},
                     progress=pairs[0][0].progress, ident=ident,
                     env=core.builder_env(*(plan.prefix for plan in plans)))
        found = idle.measure_many({plan.prefix: core.lab_namespaces(plan.prefix)
                                   for plan in plans})
        for (target, mode), plan in zip(pairs, plans, strict=True):
            target.idle = found[plan.prefix]
            problem = target.idle.problem()
            if problem:
                raise CnilabError(f"{mode.key}: {problem}")
    except BaseException:
        for plan in plans:
            core.down(plan.prefix)
        raise
    for (target, _), plan in zip(pairs, plans, strict=True):
        lock.record_owner(target.owner, target.instance)
        target.plan = plan
