"""Sweeps: conditions held on the lab while a suite measures (the extended paper's
background-load and policy-scaling experiments).

A test in the spec names a ``sweep``; each combination of its values becomes
part of the cell, so every condition value is a cell of its own, repeated,
summarised and plotted like any other. The main key of a sweep turns it on;
its modifiers (rate, rule shape) only make sense with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnilab.bench.params import ParamSpec

SWEEP_PARAMS: dict[str, ParamSpec] = {
    "background_flows": ParamSpec(
        "background_flows", int, 0, "concurrent background TCP flows between a second pod "
        "pair at the same placement, each paced to background_rate_mbps, held for the whole "
        "measurement", 0, 2000),
    "background_rate_mbps": ParamSpec(
        "background_rate_mbps", int, 10, "rate of each background flow in Mbit/s (iperf3 -b, "
        "applied per stream)", 1, 10000),
    "policy_rules": ParamSpec(
        "policy_rules", int, 0, "filter rules on every host's forwarding path that the "
        "benchmark traffic walks without matching", 0, 50000),
    "rule_shape": ParamSpec(
        "rule_shape", str, "rules", "how the policy_rules are expressed: one rule each "
        "(rules), one chain per policy like network-policy engines (chains), or one rule "
        "matching an ipset of that many entries (ipset)", choices=("rules", "chains", "ipset")),
}

# main key -> its modifiers
SWEEPS: dict[str, tuple[str, ...]] = {
    "background_flows": ("background_rate_mbps",),
    "policy_rules": ("rule_shape",),
}
MODIFIERS = {m: main for main, mods in SWEEPS.items() for m in mods}


@dataclass(frozen=True)
class Condition:
    """The sweep values of one cell (all defaults = no condition)."""

    background_flows: int = 0
    background_rate_mbps: int = 10
    policy_rules: int = 0
    rule_shape: str = "rules"

    @staticmethod
    def from_items(items: tuple[tuple[str, Any], ...]) -> Condition:
        return Condition(**dict(items))

    @property
    def rules(self) -> tuple[int, str]:
        return (self.policy_rules, self.rule_shape)


def normalize(combo: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """One condition, canonical: with its main value at 0 a sweep's modifiers do not
    apply (0 rules of any shape, 0 flows at any rate are the same baseline), so they
    are dropped and such combinations become one cell; with every sweep at 0 it is
    the unconditioned cell, shared with a plain test of the same parameters."""
    values = dict(combo)
    for main, mods in SWEEPS.items():
        if values.get(main) == 0:
            for mod in mods:
                values.pop(mod, None)
    if all(v == 0 for k, v in values.items() if k in SWEEPS):
        return ()   # no load, no rules: the plain cell of the same test
    return tuple((k, v) for k, v in combo if k in values)


def resolve(given: dict[str, Any]) -> dict[str, Any]:
    """Fill in the modifiers of every main key given (so a cell names its full condition)."""
    out = dict(given)
    for main, mods in SWEEPS.items():
        if main in given:
            for mod in mods:
                out.setdefault(mod, SWEEP_PARAMS[mod].default)
    return out
