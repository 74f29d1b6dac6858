#!/usr/bin/python
"""Read what a measurement on this node depends on (facts and raw command outputs)."""


DOCUMENTATION = r"""
module: node_facts
short_description: Kernel, CPU, NIC driver and offloads, MTUs, routes, rules, sysctls, versions
description:
  - Reads, and never changes, what a benchmark result on this node depends on.
  - RV(facts) holds parsed facts; RV(raw) maps file names to raw command outputs
    (ip -d link, routes, iptables-save of both backends, nft ruleset, ipsets, ...).
  - A tool that is missing is recorded as missing.
options:
  node_ip:
    description: The node's address on the experiment network; its NIC is described.
    type: str
    required: true
  sysctls:
    description: Sysctls to record.
    type: list
    elements: str
    default: []
"""

RETURN = r"""
facts:
  description: >-
    Parsed facts (kernel, os, cpu, memory, node_nic with driver and offloads, mtus,
    sysctls, versions).
  type: dict
  returned: always
raw:
  description: File name -> raw output of the command it is named after.
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.cnilab.cluster.plugins.module_utils import node_facts  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={"node_ip": {"type": "str", "required": True},
                       "sysctls": {"type": "list", "elements": "str", "default": []}},
        supports_check_mode=True,
    )

    def run(argv: list) -> tuple:
        path = module.get_bin_path(argv[0], opt_dirs=["/usr/sbin", "/sbin", "/usr/local/bin"])
        if path is None:
            raise OSError(f"{argv[0]} is not installed")
        return module.run_command([path, *argv[1:]])

    facts, raw = node_facts.collect(run, module.params["node_ip"], module.params["sysctls"])
    module.exit_json(changed=False, facts=facts, raw=raw)


if __name__ == "__main__":
    main()
