"""cnilab.lab.netns_lab, run on the controller itself when the connection is local.

Why an action plugin: the netns lab always lives on the machine that runs the playbook
(``hosts: localhost``, ``connection: local``). Executing the module costs a process,
Ansible's module runtime (``ansible.module_utils.basic`` alone imports in ~0.2 s) and a
temporary directory per step: several times what a step costs (a teardown takes
0.05 s). With a local connection this runs the same step in the task's worker process,
which has Ansible loaded already; with any other connection it runs the module as usual.
The module (plugins/modules/netns_lab.py) stays the documented interface.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

STEPS = ("present", "preflight", "hosts", "datapath", "pods", "endpoints", "verify",
         "checked", "status", "absent")
LOCAL = ("local", "ansible.builtin.local")

display = Display()


class ActionModule(ActionBase):
    """Arguments as the module's: step, plan, prefix, pins, verify."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("step", "plan", "prefix", "pins", "verify"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        if self._connection.transport not in LOCAL:
            result.update(self._execute_module(module_name="cnilab.lab.netns_lab",
                                               module_args=self._task.args,
                                               task_vars=task_vars))
            return result
        args = self._task.args
        step = args.get("step")
        if step not in STEPS:
            raise AnsibleActionFail(f"step must be one of {', '.join(STEPS)}, got {step!r}")
        plan = args.get("plan")
        if step != "absent" and not isinstance(plan, dict):
            raise AnsibleActionFail(f"step {step} needs plan (a dict)")
        try:
            from cnilab.lab import ansible_steps
        except ImportError as exc:
            raise AnsibleActionFail("the cnilab package is not importable by the "
                                    f"controller's Python: {exc}") from exc
        try:
            outcome = ansible_steps.run_step(
                step, plan, prefix=str(args.get("prefix") or "cnl"), pins=args.get("pins"),
                check_mode=bool(self._task.check_mode), verify=bool(args.get("verify")))
        except Exception as exc:  # the package raises CnilabError with a one-line message
            result.update(failed=True, msg=str(exc), exception_type=type(exc).__name__)
            return result
        for warning in outcome.pop("warnings", []):
            display.warning(str(warning))
        result.update(outcome)
        return result
