"""The policy-scaling rules (cnilab.bench.filter_rules) held on a lab host."""

from __future__ import annotations

from cnilab.bench.filter_rules import rule_steps
from cnilab.lab import sh


def add_rules(netns: str, count: int, *, shape: str = "rules") -> int:
    """Hold ``rule_steps`` on a lab host; returns the rules loaded."""
    loaded, steps = rule_steps(count, shape)
    for argv, stdin in steps:
        sh.run(sh.in_netns(netns, argv), input_text=stdin)
    return loaded


def remove_rules(netns: str) -> None:
    """Remove everything ``add_rules`` added (idempotent)."""
    add_rules(netns, 0)
