"""Claims over small synthetic cell sets: holds, does not hold, inconclusive, not testable;
and claim validation errors with FILE:LINE."""

from __future__ import annotations

from typing import Any

import pytest

from cnilab.claims import EQUAL, FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, Claim, evaluate
from cnilab.errors import SpecError
from cnilab.spec import load_spec_text
from cnilab.summary import summarize_cells, summary_csv


def _records(table: dict[tuple[str, str, str], list[float]],
             condition: dict[str, Any] | None = None,
             suite: str = "iperf3-tcp") -> list[dict[str, Any]]:
    """Records for cells keyed by (mode_key, placement, metric value list)."""
    metric = {"iperf3-tcp": "throughput_gbps", "netperf-tcp-rr": "transactions_per_s",
              "pod-startup": "all_ready_ms"}[suite]
    out = []
    for (mode_key, placement, _), values in table.items():
        cni, mode = mode_key.split("+")[0].split("/")
        cond = dict(condition or {})
        cell_id = f"{mode_key}/{placement}/{suite}//" + ",".join(f"{k}={v}" for k, v in
                                                                cond.items())
        for i, v in enumerate(values, start=1):
            out.append({"cell_id": cell_id, "key": f"{cell_id}#r{i}", "repetition": i,
                        "warmup": False, "status": "ok",
                        "cell": {"cni": cni, "mode": mode, "policy": "+policy" in mode_key,
                                 "placement": placement, "suite": suite, "params": {},
                                 "condition": cond},
                        "metrics": {metric: v, "cycles_per_packet": 1000.0 / v}})
    return out


FAST = [10.0, 10.2, 9.9, 10.1, 10.0]
SLOW = [6.0, 6.1, 5.9, 6.2, 6.0]
NOISY = [4.0, 12.0, 7.0, 14.0, 3.0]


def _claim(kind: str, **fields: Any) -> Claim:
    return Claim("X", "test claim", "test", kind, fields)


def test_best_and_order_verdicts() -> None:
    recs = _records({("cilium/vxlan", "intra-host", "a"): FAST,
                     ("flannel/vxlan", "intra-host", "a"): SLOW,
                     ("weave/fastdp", "intra-host", "a"): NOISY})
    cells = summarize_cells(recs)
    common = {"metric": "throughput_gbps", "suite": "iperf3-tcp", "placement": "intra-host"}
    best = _claim("best", candidate="cilium/vxlan", among=["flannel/vxlan"], **common)
    wrong = _claim("order", better=["flannel/vxlan"], than=["cilium/vxlan"], **common)
    unclear = _claim("order", better=["flannel/vxlan"], than=["weave/fastdp"], **common)
    missing = _claim("best", candidate="cilium/vxlan", among=["calico/bgp"], **common)
    cpp = _claim("order", better=["cilium/vxlan"], than=["flannel/vxlan"],
                 metric="cycles_per_packet", suite="iperf3-tcp", placement="intra-host")
    verdicts = evaluate((best, wrong, unclear, missing, cpp,
                         _claim("untestable", reason="needs NIC offload")), cells, recs)
    assert [v.verdict for v in verdicts] == [HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE, HOLDS,
                                             UNTESTABLE]
    assert "cilium/vxlan 10.04 (n=5) vs flannel/vxlan 6.04 (n=5)" in verdicts[0].evidence[0]
    assert "p(better)=" in verdicts[0].evidence[1] and verdicts[0].look == 5
    assert verdicts[0].pairs[0]["outcome"] == "better" and not verdicts[0].pairs[0]["paired"]
    assert "no measurements of calico/bgp" in verdicts[3].reason
    assert verdicts[5].reason == "needs NIC offload"
    # cycles per packet: lower is better, so the faster plugin (fewer cycles) holds


def test_no_single_best() -> None:
    recs = _records({("cilium/vxlan", "intra-host", "a"): FAST,
                     ("calico/bgp", "intra-host", "a"): SLOW,
                     ("cilium/vxlan", "inter-host", "a"): SLOW,
                     ("calico/bgp", "inter-host", "a"): FAST})
    claim = _claim("no_single_best", among=["cilium/vxlan", "calico/bgp"],
                   metric="throughput_gbps", suite="iperf3-tcp",
                   placements=["intra-host", "inter-host"])
    assert evaluate((claim,), summarize_cells(recs), recs)[0].verdict == HOLDS
    same = _records({("cilium/vxlan", "intra-host", "a"): FAST,
                     ("calico/bgp", "intra-host", "a"): SLOW,
                     ("cilium/vxlan", "inter-host", "a"): FAST,
                     ("calico/bgp", "inter-host", "a"): SLOW})
    verdict = evaluate((claim,), summarize_cells(same), same)[0]
    assert verdict.verdict == FAILS and "cilium/vxlan is significantly best at every " \
        "placement" in verdict.reason


def test_trend_over_a_sweep_with_the_plain_cell_as_zero() -> None:
    recs = _records({("flannel/vxlan", "inter-host", "a"): [300.0, 305.0, 298.0]},
                    suite="netperf-tcp-rr")
    recs += _records({("flannel/vxlan", "inter-host", "b"): [200.0, 204.0, 199.0]},
                     {"policy_rules": 1000, "rule_shape": "rules"}, "netperf-tcp-rr")
    recs += _records({("flannel/vxlan", "inter-host", "c"): [90.0, 95.0, 92.0]},
                     {"policy_rules": 5000, "rule_shape": "rules"}, "netperf-tcp-rr")
    recs += _records({("flannel/vxlan", "inter-host", "d"): [299.0, 301.0, 303.0]},
                     {"policy_rules": 5000, "rule_shape": "ipset"}, "netperf-tcp-rr")
    cells = summarize_cells(recs)
    common = {"modes": ["flannel/vxlan"], "sweep": "policy_rules",
              "metric": "transactions_per_s", "suite": "netperf-tcp-rr",
              "placement": "inter-host"}
    down = _claim("trend", direction="decreasing", condition={"rule_shape": "rules"}, **common)
    flat = _claim("trend", direction="decreasing", condition={"rule_shape": "ipset"}, **common)
    up = _claim("trend", direction="increasing", condition={"rule_shape": "rules"}, **common)
    v = evaluate((down, flat, up), cells, recs)
    # ipset rules leave the rate within 3 %: provably no meaningful difference
    assert [x.verdict for x in v] == [HOLDS, EQUAL, FAILS]
    assert "0: 301, 1000: 201, 5000: 92.33" in v[0].evidence[0]


def test_summary_csv_has_one_row_per_cell() -> None:
    recs = _records({("cilium/vxlan", "intra-host", "a"): FAST,
                     ("cilium/vxlan", "underlay", "a"): SLOW})
    text = summary_csv(summarize_cells(recs))
    lines = text.splitlines()
    assert lines[0].startswith("cell_id,mode,placement") and len(lines) == 3
    intra = next(line for line in lines if ",intra-host," in line)
    assert ",5,0,10.04," in intra and intra.endswith(f",{10.04 / 6.04:.6g}")


SPEC = """\
name: c
matrix:
  - {cni: flannel, mode: vxlan}
  - {cni: cilium, mode: vxlan}
placements: [intra-host]
tests:
  - suite: iperf3-tcp
repetitions: 2
claims:
  - id: C2
    text: eBPF best
    source: paper
    kind: best
    candidate: cilium/vxlan
    among: [flannel/vxlan]
    metric: throughput_gbps
    suite: iperf3-tcp
    placement: intra-host
"""


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("    kind: best", "    kind: fastest", 13, "'claims[0].kind' must be one of best"),
    ("    among: [flannel/vxlan]", "    among: [flannel/host-gw]", 15,
     "'claims[0].among[0]': 'flannel/host-gw' is not in the matrix"),
    ("    placement: intra-host", "    placement: intra-host\n    winner: x", 19,
     "unknown key 'winner' in claims[0]"),
    ("    candidate: cilium/vxlan\n", "", 10, "'claims[0]' (best) is missing 'candidate'"),
])
def test_claim_validation_names_the_line(old: str, new: str, line: int, words: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(SPEC.replace(old, new), "c.yaml")
    assert str(info.value).startswith(f"c.yaml:{line}: "), str(info.value)
    assert words in str(info.value)


def test_lanman_spec_claims_parse() -> None:
    from pathlib import Path

    from cnilab.spec import load_spec

    root = Path(__file__).resolve().parent.parent
    spec = load_spec(root / "experiments" / "lanman2020.yaml")
    assert {c.id for c in spec.claims} >= {"C1", "C2", "C3", "C4", "C6", "C7", "C8", "C9"}
    quick = load_spec(root / "experiments" / "lanman2020.yaml", "quick")
    assert quick.quick and quick.name == "lanman2020-quick" and quick.repetitions == 3
    assert all(dict(c.params).get("duration_s", 1) == 1 for c in quick.cells())


def test_a_claim_on_a_suite_the_target_cannot_run_says_why() -> None:
    recs = _records({("flannel/vxlan", "inter-host", "a"): FAST})
    claim = _claim("order", better=["flannel/vxlan"], than=["calico/bgp"],
                   metric="agent_memory_mib", suite="agent-memory", placement="node")
    why = "the netns lab runs no CNI agents"
    (verdict,) = evaluate((claim,), summarize_cells(recs), recs, None, {"agent-memory": why})
    assert verdict.verdict == UNTESTABLE
    assert verdict.reason == f"agent-memory is not measured on this target: {why}"
