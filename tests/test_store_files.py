"""The controller-side writer collect uses (cnilab.cluster.store_files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.cnilab.cluster.plugins.action.store_files import store  # noqa: E402


def test_only_differing_files_are_written(tmp_path: Path) -> None:
    target = tmp_path / "nodes" / "w1"
    assert store(str(target), {"facts.json": "{}\n", "ip-addr.txt": "eth0"}) == \
        ["facts.json", "ip-addr.txt"]
    assert (target / "ip-addr.txt").read_text() == "eth0"
    assert store(str(target), {"facts.json": "{}\n", "ip-addr.txt": "eth0"}) == []
    assert store(str(target), {"ip-addr.txt": "eth1"}) == ["ip-addr.txt"]
    assert sorted(p.name for p in target.iterdir()) == ["facts.json", "ip-addr.txt"]


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    assert store(str(tmp_path / "d"), {"a.txt": "x"}, write=False) == ["a.txt"]
    assert not (tmp_path / "d").exists()


def test_paths_outside_the_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a plain name is required"):
        store(str(tmp_path), {"../escape.txt": "x"})
    assert not (tmp_path.parent / "escape.txt").exists()
