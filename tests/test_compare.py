"""`cnilab compare`: cell by cell, with the ratio's interval and significance; runs on
different targets through their own underlay; refusals in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cnilab.compare import compare, differences, format_table
from cnilab.errors import InputError
from cnilab.rundir import RunDir


def _run(parent: Path, name: str, values: dict[tuple[str, str], list[float]],
         kind: str = "netns", kernel: str = "6.1", duration: int = 2) -> Path:
    run = RunDir.create(parent, name)
    run.write_manifest({"schema": 1, "run_id": name, "target": {"kind": kind,
                                                                  "emulation": kind == "netns"},
                        "machine": {"kernel": kernel, "cpu_model": "x"},
                        "tools": {"iperf3": {"reported": "3.12"}}, "spec": {"name": "s"}})
    seq = 0
    for (mode, placement), series in values.items():
        cni, m = mode.split("/")
        cell_id = f"{mode}/{placement}/iperf3-tcp/duration_s={duration}"
        for rep, v in enumerate(series, start=1):
            seq += 1
            run.append_result({
                "schema": 1, "run_id": name, "seq": seq, "key": f"{cell_id}#r{rep}",
                "cell_id": cell_id, "repetition": rep, "warmup": False, "status": "ok",
                "cell": {"cni": cni, "mode": m, "policy": False, "placement": placement,
                         "suite": "iperf3-tcp", "params": {"duration_s": duration},
                         "condition": {}},
                "metrics": {"throughput_gbps": v}, "raw": {}, "elapsed_s": duration})
    return run.path


SAME = {("flannel/vxlan", "inter-host"): [10.0, 10.2, 9.9, 10.1],
        ("flannel/vxlan", "underlay"): [20.0, 20.3, 19.8, 20.1]}


def test_a_run_against_itself_differs_nowhere(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", SAME)
    ((ra, rb, rows, normalised),) = compare([a, a])
    assert not normalised and len(rows) == 2
    assert all(r.significant() is False for r in rows)
    assert differences(ra, rb) == []


def test_a_changed_datapath_is_significant_and_durations_do_not_split_cells(
        tmp_path: Path) -> None:
    a = _run(tmp_path, "a", SAME, duration=2)
    slower = {**SAME, ("flannel/vxlan", "inter-host"): [7.0, 7.1, 6.9, 7.2]}
    b = _run(tmp_path, "b", slower, duration=1, kernel="6.18")
    ((ra, rb, rows, _),) = compare([a, b])
    by = {r.label: r for r in rows}
    inter = by["flannel/vxlan inter-host iperf3-tcp"]
    assert inter.significant() and inter.effect.ratio == pytest.approx(0.7, abs=0.01)  # type: ignore[union-attr]
    assert by["flannel/vxlan underlay iperf3-tcp"].significant() is False
    found = differences(ra, rb)
    assert "kernel: 6.1 vs 6.18" in found and "test durations: 2 s vs 1 s" in found
    text = format_table(ra, rb, rows, False)
    assert "2 shared cells, 1 significantly different" in text


def test_different_targets_compare_through_their_underlay(tmp_path: Path) -> None:
    lab = _run(tmp_path, "lab", SAME)
    # a cluster twice as fast everywhere: the same ratios to its own underlay
    cluster = _run(tmp_path, "cluster", {k: [2 * v for v in vs] for k, vs in SAME.items()},
                   kind="cluster")
    ((_, _, rows, normalised),) = compare([lab, cluster])
    assert normalised and [r.label for r in rows] == ["flannel/vxlan inter-host iperf3-tcp"]
    assert rows[0].significant() is False
    assert rows[0].effect.ratio == pytest.approx(1.0, abs=0.01)  # type: ignore[union-attr]


def test_refusals(tmp_path: Path, cli: Any) -> None:
    a = _run(tmp_path, "a", SAME)
    other = _run(tmp_path, "o", {("calico/bgp", "inter-host"): [1.0, 1.1]})
    with pytest.raises(InputError, match="share no cell"):
        compare([a, other])
    out = cli("compare", str(a), str(other))
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert cli("compare", str(a)).returncode == 2
    html = tmp_path / "cmp.html"
    done = cli("compare", str(a), str(a), "--html", str(html))
    assert done.returncode == 0, done.stderr
    assert "<img src=\"data:image/png;base64," in html.read_text()
    assert json.dumps("flannel/vxlan")[1:-1] in html.read_text()
