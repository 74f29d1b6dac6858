"""Run directory storage: append-and-fsync records, atomic files, torn-line repair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnilab.errors import InputError
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


def test_append_and_read_back(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r")
    for i in range(3):
        run.append_result({"key": f"k{i}", "status": "ok"})
    assert [r["key"] for r in run.results()] == ["k0", "k1", "k2"]


def test_torn_tail_is_ignored_then_repaired(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r")
    run.append_result({"key": "k0"})
    with open(run.results_path, "a", encoding="utf-8") as fh:
        fh.write('{"key": "k1", "sta')  # killed mid-write
    assert [r["key"] for r in run.results()] == ["k0"]
    assert run.repair_results() > 0
    run.append_result({"key": "k1"})
    assert [r["key"] for r in run.results()] == ["k0", "k1"]


def test_atomic_json_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
