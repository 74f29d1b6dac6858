"""``cnilab runs``: the run directories under a parent, with what each is and where it
stopped, and the command that resumes an interrupted one.

Reads only manifests and state files; a directory that is not a run, or whose files are
unreadable, is listed as such rather than stopping the listing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunEntry:
    path: Path
    spec: str
    target: str
    created: str
    status: str
    completed: int
    planned: int
    command: list[str]

    def resume_command(self) -> str | None:
        """The command that continues an interrupted or failed run (its own argv, with
        ``--resume`` in place of ``--out``)."""
        if self.status not in ("interrupted", "failed", "running"):
            return None
        argv, skip = [], False
        for word in self.command:
            if skip:
                skip = False
                continue
            if word in ("--out", "--resume"):
                skip = True
                continue
            argv.append(word)
        if argv[:2] in (["cnilab", "reproduce"], ["cnilab", "run"]):
            return " ".join([*argv, "--resume", str(self.path)])
        return f"cnilab run SPEC --resume {self.path}"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def list_runs(parent: Path) -> list[RunEntry]:
    """Every run directory directly under ``parent``, oldest first."""
    entries = []
    for path in sorted(p for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []:
        if not (path / "manifest.json").is_file():
            continue
        manifest, state = _json(path / "manifest.json"), _json(path / "state.json")
        spec = _mapping(manifest.get("spec"))
        target = _mapping(manifest.get("target"))
        variant = spec.get("variant") or ("quick" if spec.get("quick") else "")
        kind = str(target.get("kind", "?"))
        where = target.get("inventory") or target.get("instance") or ""
        entries.append(RunEntry(
            path=path, spec=str(spec.get("name", "?")) + (f" ({variant})" if variant else ""),
            target=f"{kind} {where}".strip(), created=str(manifest.get("created_at", "?")),
            status=str(state.get("status", "unreadable" if not manifest else "no state")),
            completed=int(state.get("completed", 0) or 0),
            planned=int(state.get("planned", 0) or 0),
            command=[str(w) for w in manifest.get("command", []) if isinstance(w, str)]))
    return entries


def format_runs(entries: list[RunEntry]) -> str:
    if not entries:
        return "no runs"
    lines = [f"{'run':<44} {'spec':<26} {'target':<14} {'status':<12} done"]
    for e in entries:
        lines.append(f"{e.path.name:<44} {e.spec:<26} {e.target:<14} {e.status:<12} "
                     f"{e.completed}/{e.planned}")
        resume = e.resume_command()
        if resume:
            lines.append(f"    resume: {resume}")
    return "\n".join(lines)
