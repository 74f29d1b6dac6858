#!/usr/bin/python
"""Ansible module: one step of the cnilab netns lab life cycle."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: netns_lab
short_description: Build, verify, inspect or tear down one step of the cnilab netns lab
description:
  - Thin wrapper over the C(cnilab.lab) Python package, which must be importable
    by the module's interpreter.
  - Each step is idempotent and reports C(changed) only when it created or removed something.
options:
  step:
    description: Which step to run.
    type: str
    required: true
    choices: [present, preflight, hosts, datapath, pods, endpoints, verify, checked, status,
              absent]
  plan:
    description: The lab plan (C(cnilab.lab.plan.LabPlan.to_dict())); not needed for C(absent).
    type: dict
  prefix:
    description: Name prefix of every lab object, used by C(absent).
    type: str
    default: cnl
  verify:
    description: With C(present), run the connectivity and MTU checks after building
      (what step C(verify) does), in the same module run.
    type: bool
    default: false
  pins:
    description: The C(tools) mapping of C(versions/tools.yml); C(preflight) warns when
      an installed tool differs from its pin.
    type: dict
author: cnilab developers
"""

EXAMPLES = r"""
- name: Lab | Create hosts
  cnilab.lab.netns_lab:
    step: hosts
    plan: "{{ lab_netns_plan }}"
"""

RETURN = r"""
status:
  description: Lab status (steps C(status), C(checked)).
  type: dict
  returned: when step is status or checked
checks:
  description: Connectivity and MTU checks that were run (steps C(verify), C(checked)).
  type: list
  returned: when step is verify or checked
steps:
  description: Which build steps changed something (step C(present)).
  type: dict
  returned: when step is present
removed:
  description: What teardown removed (step C(absent)).
  type: dict
  returned: when step is absent
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (after the doc blocks)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "step": {"type": "str", "required": True,
                     "choices": ["present", "preflight", "hosts", "datapath", "pods",
                                 "endpoints", "verify", "checked", "status", "absent"]},
            "plan": {"type": "dict"},
            "prefix": {"type": "str", "default": "cnl"},
            "pins": {"type": "dict"},
            "verify": {"type": "bool", "default": False},
        },
        required_if=[("step", s, ["plan"]) for s in
                     ("present", "preflight", "hosts", "datapath", "pods", "endpoints",
                      "verify", "checked", "status")],
        supports_check_mode=True,
    )
    try:
        from cnilab.lab import ansible_steps
    except ImportError as exc:
        module.fail_json(msg=f"the cnilab package is not importable by this interpreter: {exc}")
        return
    try:
        outcome = ansible_steps.run_step(module.params["step"], module.params.get("plan"),
                                         prefix=module.params["prefix"],
                                         pins=module.params.get("pins"),
                                         verify=module.params["verify"],
                                         check_mode=module.check_mode)
    except Exception as exc:  # the package raises CnilabError with a one-line message
        module.fail_json(msg=str(exc), exception_type=type(exc).__name__)
        return
    for warning in outcome.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
