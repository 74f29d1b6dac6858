#!/usr/bin/python
"""Record a node's clean network state, or purge back to it and report what remains."""


DOCUMENTATION = r"""
module: node_state
short_description: Clean-baseline snapshot, purge and compare of a node's network state
description:
  - C(state=recorded) captures links, addresses, routes, rules, iptables (legacy and nft,
    IPv4 and IPv6), nft tables, ipsets, tc eBPF attach points, BPF pins, watched paths and
    sysctls into O(path), once (a recorded baseline is kept unless O(force)).
  - C(state=clean) compares the node with that baseline; with O(purge) it first removes
    whatever is not in the baseline and restores what was changed. It reports every
    remaining difference in RV(differences) and never fails by itself, so the caller
    can save the differences before failing.
  - Check mode reports the purge it would run in RV(actions) and runs none of it.
options:
  state:
    description: recorded or clean.
    type: str
    choices: [recorded, clean]
    required: true
  path:
    description: Where the baseline snapshot is kept on the node.
    type: path
    required: true
  force:
    description: With state=recorded, replace an existing baseline.
    type: bool
    default: false
  purge:
    description: With state=clean, remove what is not in the baseline before comparing.
    type: bool
    default: true
  watched_paths:
    description: Directories (or files) whose entries must match the baseline.
    type: list
    elements: path
    default: []
  sysctls:
    description: Sysctls whose values must match the baseline.
    type: list
    elements: str
    default: []
"""

RETURN = r"""
differences:
  description: One line per remaining difference from the baseline (state=clean).
  type: list
  elements: str
  returned: always
kept:
  description: Links not in the baseline that only go with their loaded module (tunnel
    drivers' fallback devices, e.g. tunl0 of ipip, when the module is built in or in use).
  type: list
  elements: str
  returned: when state is clean
actions:
  description: The purge steps run (or, in check mode, planned).
  type: list
  elements: str
  returned: always
"""

import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.cnilab.cluster.plugins.module_utils import node_state  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["recorded", "clean"], "required": True},
            "path": {"type": "path", "required": True},
            "force": {"type": "bool", "default": False},
            "purge": {"type": "bool", "default": True},
            "watched_paths": {"type": "list", "elements": "path", "default": []},
            "sysctls": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params

    def run(argv: list) -> tuple:
        return module.run_command(argv)

    def run_stdin(argv: list, data: object) -> tuple:
        return module.run_command(argv, data=data, binary_data=False)

    def snapshot() -> dict:
        return node_state.capture(run, params["watched_paths"], params["sysctls"])

    if params["state"] == "recorded":
        if os.path.exists(params["path"]) and not params["force"]:
            module.exit_json(changed=False, differences=[], actions=[])
        if not module.check_mode:
            directory = os.path.dirname(params["path"])
            os.makedirs(directory, mode=0o700, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".baseline-")
            with os.fdopen(handle, "w") as out:
                json.dump(snapshot(), out, indent=1, sort_keys=True)
            os.replace(temporary, params["path"])
        module.exit_json(changed=True, differences=[], actions=["record " + params["path"]])

    if not os.path.exists(params["path"]):
        module.fail_json(msg=f"no clean baseline at {params['path']}: it is recorded by "
                             "`cnilab cluster up` (node_reset_state=present) before any CNI "
                             "is installed")
    with open(params["path"]) as handle:
        baseline = json.load(handle)
    if baseline.get("format") != node_state.SNAPSHOT_FORMAT:
        module.fail_json(msg="{}: baseline format {}, this cnilab reads {}; record it again "
                             "on a clean node".format(params["path"], baseline.get("format"),
                                                  node_state.SNAPSHOT_FORMAT))
    before = snapshot()
    actions = node_state.purge_actions(baseline, before) if params["purge"] else []
    described = [node_state.describe(a) for a in actions]
    if module.check_mode or not actions:
        # nothing changed the node: the snapshot just taken is the one to compare
        module.exit_json(changed=bool(actions), actions=described,
                         differences=node_state.differences(baseline, before),
                         kept=node_state.kept(baseline, before))
    failed = node_state.apply(run_stdin, actions)
    after = snapshot()
    module.exit_json(changed=True, actions=described, purge_failures=failed,
                     differences=node_state.differences(baseline, after),
                     kept=node_state.kept(baseline, after))


if __name__ == "__main__":
    main()
