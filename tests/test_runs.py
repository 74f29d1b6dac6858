"""`cnilab runs`: what each run directory is, where it stopped, how to resume it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cnilab.runs import format_runs, list_runs


def _run(parent: Path, name: str, status: str | None, command: list[str]) -> Path:
    path = parent / name
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({
        "run_id": name, "created_at": "2026-11-30T18:00:00Z", "command": command,
        "spec": {"name": "lanman2020-quick", "variant": "quick"},
        "target": {"kind": "netns", "emulation": True}}))
    if status is not None:
        state: dict[str, Any] = {"status": status, "completed": 12, "planned": 288}
        (path / "state.json").write_text(json.dumps(state))
    return path


def test_runs_lists_state_and_the_resume_command(tmp_path: Path, cli: Any) -> None:
    done = _run(tmp_path, "20261130T180000-a", "complete",
                ["cnilab", "reproduce", "lanman2020", "--lab", "netns", "--quick"])
    stopped = _run(tmp_path, "20261130T181000-b", "interrupted",
                   ["cnilab", "reproduce", "lanman2020", "--quick", "--out", "/x/runs"])
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "20261130T182000-c").mkdir()
    (tmp_path / "20261130T182000-c" / "manifest.json").write_text("{torn")
    entries = list_runs(tmp_path)
    assert [e.path for e in entries] == [done, stopped, tmp_path / "20261130T182000-c"]
    assert entries[0].resume_command() is None
    assert entries[1].resume_command() == \
        f"cnilab reproduce lanman2020 --quick --resume {stopped}"
    assert entries[2].status == "unreadable"
    text = format_runs(entries)
    assert "lanman2020-quick (quick)" in text and "interrupted" in text and "12/288" in text
    out = cli("runs", str(tmp_path))
    assert out.returncode == 0 and f"resume: cnilab reproduce lanman2020 --quick " \
        f"--resume {stopped}" in out.stdout
    missing = cli("runs", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such directory" in missing.stderr
