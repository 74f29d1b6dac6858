"""Run directory storage: append-and-fsync records, atomic files, torn-line repair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnilab.errors import CnilabError, InputError
from cnilab.rundir import RunDir, atomic_write_json


def test_create_layout_and_refuse_existing(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r1")
    assert {p.name for p in run.path.iterdir()} == {"raw", "ansible", "lab"}
    with pytest.raises(InputError, match="already exists"):
        RunDir.create(tmp_path, "r1")


def test_open_requires_manifest(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="not a cnilab run directory"):
        RunDir.open(tmp_path / "x")


def _record(key: str, status: str = "ok") -> dict[str, object]:
    return {"key": key, "cell_id": key.split("#")[0], "cell": {}, "status": status,
            "warmup": False, "repetition": 1, "metrics": {}, "raw": {}, "seq": 1}


def test_append_and_read_back(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r")
    for i in range(3):
        run.append_result(_record(f"k{i}#r1"))
    assert [r["key"] for r in run.results()] == ["k0#r1", "k1#r1", "k2#r1"]


def test_torn_tail_is_ignored_then_repaired(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r")
    run.append_result(_record("k0#r1"))
    with open(run.results_path, "a", encoding="utf-8") as fh:
        fh.write('{"key": "k1", "sta')  # killed mid-write
    assert [r["key"] for r in run.results()] == ["k0#r1"]
    assert run.repair_results() > 0
    run.append_result(_record("k1#r1"))
    assert [r["key"] for r in run.results()] == ["k0#r1", "k1#r1"]


@pytest.mark.parametrize(("line", "words"), [
    ("{}", "corrupt record: no 'key'"),
    ("null", "a record is a JSON object, not NoneType"),
    ("[1, 2]", "a record is a JSON object, not list"),
    ('{"key": 1}', "'key' is int"),
    ("[" * 100_000 + "]" * 100_000, "corrupt record: too deep"),
    ("not json", "corrupt record: Expecting value"),
])
def test_a_line_that_is_not_a_record_is_named(tmp_path: Path, line: str, words: str) -> None:
    run = RunDir.create(tmp_path, "r")
    run.append_result(_record("k0#r1"))
    with open(run.results_path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    with pytest.raises(InputError, match=f"results.jsonl:2: .*{words}"):
        list(run.results())


def test_a_duplicated_record_and_nan_are_refused(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r")
    run.append_result(_record("k0#r1"))
    run.append_result(_record("k1#r1"))
    with open(run.results_path, "a", encoding="utf-8") as fh:
        fh.write(run.results_path.read_text().splitlines()[0] + "\n")   # line 1 again
    with pytest.raises(InputError, match=r"results.jsonl:3: a second record of k0#r1 "
                                         r"\(the first is line 1\)"):
        list(run.results())
    bad = {**_record("k2#r1"), "metrics": {"throughput_gbps": float("nan")}}
    with pytest.raises(CnilabError, match="record k2#r1: not valid JSON"):
        run.append_result(bad)
    assert len(run.results_path.read_text().splitlines()) == 3          # nothing written
    nan_line = RunDir.create(tmp_path, "n")
    nan_line.results_path.write_text(json.dumps(_record("k#r1")).replace(
        '"metrics": {}', '"metrics": {"x": NaN}') + "\n")
    with pytest.raises(InputError, match="NaN is not a JSON number"):
        list(nan_line.results())


def test_a_corrupt_state_is_named(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r")
    run.state_path.write_text("{not json")
    with pytest.raises(InputError, match=r"state.json: unreadable state"):
        run.read_state()


def test_atomic_json_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
