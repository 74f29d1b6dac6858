"""The paper's numbers beside ours (cnilab/reference.py): validation with FILE:LINE, our
value of each comparison against hand-computed intervals, and the reading."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from cnilab.errors import SpecError
from cnilab.reference import PaperValue, compare, reading
from cnilab.spec import load_spec, load_spec_text
from cnilab.summary import summarize_cells

ROOT = Path(__file__).resolve().parents[1]


def _records(values: dict[str, list[float]], metric: str = "throughput_gbps",
             first_round: dict[str, int] | None = None) -> list[dict[str, Any]]:
    out = []
    for mode_key, series in values.items():
        cni, mode = mode_key.split("+")[0].split("/")
        cell_id = f"{mode_key}/inter-host/iperf3-tcp//"
        start = (first_round or {}).get(mode_key, 1)
        for i, v in enumerate(series, start=start):
            out.append({"cell_id": cell_id, "key": f"{cell_id}#r{i}", "repetition": i,
                        "warmup": False, "status": "ok",
                        "cell": {"cni": cni, "mode": mode, "policy": "+policy" in mode_key,
                                 "placement": "inter-host", "suite": "iperf3-tcp",
                                 "params": {}, "condition": {}},
                        "metrics": {metric: v}})
    return out


def _value(compare_: str, low: float, high: float, **kw: Any) -> PaperValue:
    return PaperValue("P", "says", "where", compare_, low, high, kw.get("mode", "calico/bgp"),
                      kw.get("vs", "flannel/vxlan"), cell={
                          "metric": "throughput_gbps", "suite": "iperf3-tcp",
                          "placement": "inter-host"})


def test_a_paired_ratio_matches_the_hand_computed_interval() -> None:
    a, b = [10.0, 10.4, 9.8, 10.2], [8.0, 8.1, 8.0, 8.3]
    recs = _records({"calico/bgp": a, "flannel/vxlan": b})
    [got] = compare((_value("ratio", 1.2, 1.3),), summarize_cells(recs), recs)
    logs = [math.log(x / y) for x, y in zip(a, b, strict=True)]
    half = stats.t.ppf(0.975, 3) * statistics.stdev(logs) / 2
    mean = statistics.fmean(logs)
    assert got.paired and got.n == 4
    assert got.ours == pytest.approx(math.exp(mean))
    assert got.interval == pytest.approx((math.exp(mean - half), math.exp(mean + half)))
    assert got.reading.startswith("agrees")     # ~1.25, the interval meets 1.2-1.3


def test_a_difference_in_rounds_not_shared_is_welch() -> None:
    a, b = [9.0, 9.2, 8.9], [10.0, 10.3, 10.1]
    recs = _records({"calico/bgp+policy": a, "calico/bgp": b},
                    first_round={"calico/bgp": 4})
    value = _value("difference", -1.5, -0.5, mode="calico/bgp+policy", vs="calico/bgp")
    [got] = compare((value,), summarize_cells(recs), recs)
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert not got.paired and got.n == 3
    assert got.ours == pytest.approx(statistics.fmean(a) - statistics.fmean(b))
    low, high = got.interval
    ci = welch.confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    assert got.reading.startswith("agrees")     # -1.1, inside the paper's 0.5-1.5 cost


def test_a_missing_cell_says_which() -> None:
    recs = _records({"calico/bgp": [1.0, 1.1]})
    [got] = compare((_value("ratio", 1.5, 1.5),), summarize_cells(recs), recs)
    assert got.ours is None and "no measurements of flannel/vxlan" in got.reading
    assert got.ours_text() == "not measured"


@pytest.mark.parametrize(("low", "high", "interval", "expected"), [
    (1.5, 1.5, (1.1, 1.2), "same direction, smaller here"),
    (1.5, 1.5, (1.7, 1.9), "same direction, larger here"),
    (1.5, 1.5, (0.7, 0.8), "opposite direction"),
    (1.5, 1.5, (0.9, 1.1), "no clear difference here; the paper's lies outside our interval"),
    (1.33, math.inf, (2.0, 3.0), "agrees (our interval meets the paper's value)"),
    (0.5, 0.7, (0.3, 0.4), "same direction, larger here"),   # a ratio below 1, further
])
def test_reading(low: float, high: float, interval: tuple[float, float], expected: str) -> None:
    assert reading(_value("ratio", low, high), interval) == expected


def test_lanman2020_encodes_the_papers_values_with_their_sources() -> None:
    spec = load_spec(ROOT / "experiments/lanman2020.yaml")
    values = {v.id: v for v in spec.paper_values}
    assert {v.claim for v in values.values()} <= {c.id for c in spec.claims}
    # 324 - 245 cycles/packet of netfilter (paper.md); 749 / 450 inter-host
    assert values["P1"].low == 79 and values["P1"].unit == "cycles/packet"
    assert values["P2"].low == pytest.approx(749 / 450, abs=0.005)
    assert (values["P3"].low, values["P3"].high) == (-1.5, -0.5)
    assert values["P7"].paper_text() == ">= ~x2.75" and math.isinf(values["P7"].high)
    assert all(v.where for v in values.values())


BASE = """
name: t
matrix: [{cni: flannel, mode: vxlan}, {cni: calico, mode: bgp}]
placements: [inter-host]
tests: [{suite: iperf3-tcp, params: {duration_s: 1}}]
repetitions: 2
paper_values:
  - id: P1
    says: x
    where: Fig. 1
    compare: ratio
    value: 1.2
    mode: calico/bgp
    vs: flannel/vxlan
    metric: throughput_gbps
    suite: iperf3-tcp
    placement: inter-host
"""


@pytest.mark.parametrize(("change", "message"), [
    (("value: 1.2", "value: [1, 2, 3]"), ":12: 'paper_values[0].value' must be a number or"),
    (("value: 1.2", "value: .inf"), ":12: 'paper_values[0].value' must be a number or"),
    (("value: 1.2", "value: -2"), ":12: 'paper_values[0].value': a ratio must be above 0"),
    (("compare: ratio", "compare: share"), ":11: 'paper_values[0].compare' must be ratio or"),
    (("vs: flannel/vxlan", "vs: weave/fastdp"), ":14: 'paper_values[0].vs': 'weave/fastdp' is "
     "not in the matrix"),
    (("    says: x\n", ""), ":8: 'paper_values[0]' is missing 'says'"),
    (("    where: Fig. 1\n", "    where: Fig. 1\n    claim: C1\n"),
     ":11: 'paper_values[0].claim': 'C1' is not a claim id"),
    (("    where: Fig. 1\n", "    where: Fig. 1\n    colour: red\n"),
     ":11: unknown key 'colour' in paper_values[0]"),
])
def test_bad_paper_values_name_the_line(change: tuple[str, str], message: str) -> None:
    with pytest.raises(SpecError) as err:
        load_spec_text(BASE.replace(*change), "spec.yaml")
    assert message in str(err.value), str(err.value)


def test_a_value_on_a_suite_the_target_cannot_run_says_why() -> None:
    value = PaperValue("P8", "memory", "where", "ratio", 3.2, 5.0, "calico/bgp",
                       "flannel/vxlan", cell={"metric": "agent_memory_mib",
                                              "suite": "agent-memory", "placement": "node"})
    recs = _records({"calico/bgp": [1.0, 1.1]})
    [got] = compare((value,), summarize_cells(recs), recs,
                    {"agent-memory": "the netns lab runs no CNI agents"})
    assert got.ours is None
    assert got.reading == "agent-memory is not measured on this target: the netns lab runs " \
        "no CNI agents"
