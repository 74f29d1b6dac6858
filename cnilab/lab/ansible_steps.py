"""The lab steps as the ``cnilab.lab.netns_lab`` Ansible module calls them.

Kept separate from the module file so that the logic is importable and
unit-testable like the rest of the package; the module only maps its
parameters onto ``run_step``.
"""

from __future__ import annotations

from typing import Any

from cnilab.errors import CnilabError
from cnilab.lab import core, status, verify
from cnilab.lab.plan import LabPlan, load_saved_plan


def _is_built(plan: LabPlan) -> bool:
    present = set(core.lab_namespaces(plan.prefix))
    wanted = {h.netns for h in plan.hosts} | {p.netns for h in plan.hosts for p in h.pods}
    return load_saved_plan() == plan and wanted <= present


def _pin_warnings(pins: dict[str, Any] | None) -> list[str]:
    if not pins:
        return []
    from cnilab.pins import Pins
    from cnilab.toolversions import installed_versions

    found = installed_versions(Pins(tools=pins, kubernetes_profiles={}, cni_profiles={},
                                    file_sha256={}), ["iperf3", "netperf", "cni_plugins"])
    return [f"{t}: installed {v.reported or 'nothing'}, pinned {v.pinned}"
            for t, v in found.items() if not v.matches_pin]


def run_step(
    step: str,
    plan_data: dict[str, Any] | None,
    *,
    prefix: str = "cnl",
    pins: dict[str, Any] | None = None,
    check_mode: bool = False,
    verify: bool = False,
) -> dict[str, Any]:
    """Run one step and return the module result (``changed`` plus step data)."""
    if step == "absent":
        if check_mode:
            left = core.leftovers(prefix)
            return {"changed": any(left.values()), "removed": left}
        report = core.down(prefix)
        return {"changed": report.removed_anything,
                "removed": {"namespaces": report.namespaces, "processes": report.processes,
                            "root_links": report.root_links}}
    if plan_data is None:
        raise CnilabError(f"step '{step}' needs a plan")
    plan = LabPlan.from_dict(plan_data)
    if step == "preflight":
        core.preflight(plan)
        return {"changed": False, "warnings": _pin_warnings(pins)}
    if step == "status":
        return {"changed": False, "status": status.lab_status(plan)}
    if step == "verify":
        return {"changed": False, "checks": _verified(plan)}
    if step == "checked":
        return {"changed": False, "checks": _verified(plan), "status": status.lab_status(plan)}
    if check_mode:
        return {"changed": not _is_built(plan)}
    if step == "present":
        # every build step in one module run: each module run costs Ansible a process
        # and an import of cnilab (~0.5 s), the steps themselves a fraction of that
        core.preflight(plan)
        changed = [BUILDERS[name](plan) for name in BUILD_ORDER]
        return {"changed": any(changed), "warnings": _pin_warnings(pins),
                "steps": dict(zip(BUILD_ORDER, changed, strict=True)),
                **({"checks": _verified(plan)} if verify else {})}
    if step not in BUILDERS:
        raise CnilabError(f"unknown step '{step}'")
    return {"changed": BUILDERS[step](plan)}


BUILDERS = {"hosts": core.ensure_hosts, "datapath": core.ensure_datapath,
            "pods": core.ensure_pods, "endpoints": core.ensure_endpoints}
BUILD_ORDER = ("hosts", "datapath", "pods", "endpoints")


def _verified(plan: LabPlan) -> list[dict[str, Any]]:
    checks = verify.verify(plan)
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise CnilabError("lab verification failed: " + "; ".join(c["detail"] for c in failed))
    return checks
