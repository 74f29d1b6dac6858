"""The run directory: the contract between measurement, storage, statistics and reports.

Layout (documented in docs/run-directory.md)::

    runs/<run-id>/
      manifest.json   what ran, where, with which versions (written atomically)
      results.jsonl   one record per measurement, appended and fsynced as each ends
      state.json      progress for --resume (written atomically)
      raw/            raw output of every tool invocation
      ansible/        ansible-runner private data dirs and artifacts
      lab/            lab status snapshots, one per (cni, mode)

Nothing measured is lost: a record reaches the disk before the next
measurement starts, and a torn last line (a kill mid-write) is cut off on
resume instead of poisoning the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnilab.errors import CnilabError, InputError

RESULT_SCHEMA = 1
# what every record holds (and its type): what --resume, reports and verify rely on
RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "key": str, "cell_id": str, "cell": dict, "status": str, "warmup": bool,
    "repetition": int, "metrics": dict, "raw": dict, "seq": int}
STATUSES = ("ok", "failed", "timeout")


def record_problem(record: Any) -> str | None:
    """What makes ``record`` not a measurement record, or None."""
    if not isinstance(record, dict):
        return f"a record is a JSON object, not {type(record).__name__}"
    for name, kind in RECORD_FIELDS.items():
        if name not in record:
            return f"no '{name}'"
        if not isinstance(record[name], kind) or (kind is int and isinstance(record[name],
                                                                              bool)):
            return f"'{name}' is {type(record[name]).__name__}"
    if record["status"] not in STATUSES:
        return f"status {str(record['status'])[:40]!r} is not one of {', '.join(STATUSES)}"
    return None


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old or the new file, never half of one."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new one, never half of one. The
    temporary file is this process's own: two processes writing the same file (two
    cnilab commands remembering playbook timings) never write into one temporary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON number")


class RunDir:
    """A run directory on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- locations ---------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def results_path(self) -> Path:
        return self.path / "results.jsonl"

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    @property
    def raw_dir(self) -> Path:
        return self.path / "raw"

    @property
    def ansible_dir(self) -> Path:
        return self.path / "ansible"

    @property
    def lab_dir(self) -> Path:
        return self.path / "lab"

    @property
    def run_id(self) -> str:
        """The id the run was created with (its manifest's), whatever the directory is
        called now; the directory name until the manifest exists."""
        try:
            recorded = json.loads(self.manifest_path.read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError, AttributeError):
            recorded = None
        return recorded if isinstance(recorded, str) and recorded else self.path.name

    # -- creation and opening ---------------------------------------------
    @classmethod
    def create(cls, parent: Path, run_id: str) -> RunDir:
        path = parent / run_id
        try:
            parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            raise InputError(f"run directory already exists: {path}") from None
        except OSError as exc:
            raise InputError(f"cannot create run directory {path}: {exc.strerror}") from None
        for sub in ("raw", "ansible", "lab"):
            (path / sub).mkdir()
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        run = cls(path)
        if not run.manifest_path.is_file():
            raise InputError(f"{path}: not a cnilab run directory (no manifest.json)")
        return run

    # -- manifest and state ------------------------------------------------
    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    def read_manifest(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{self.manifest_path}: unreadable manifest: {exc}") from None
        return data

    def write_state(self, state: dict[str, Any]) -> None:
        atomic_write_json(self.state_path, state)

    def read_state(self) -> dict[str, Any]:
        if not self.state_path.is_file():
            return {}
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{self.state_path}: unreadable state ({exc}); the records in "
                             f"{self.results_path.name} are intact: move state.json aside "
                             "to resume from them") from None
        if not isinstance(data, dict):
            raise InputError(f"{self.state_path}: not a JSON object")
        return data

    # -- results -------------------------------------------------------------
    def repair_results(self) -> int:
        """Cut a torn final line left by a kill mid-write; returns bytes removed."""
        path = self.results_path
        if not path.is_file():
            return 0
        data = path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as fh:
            fh.truncate(keep)
        return len(data) - keep

    def append_result(self, record: dict[str, Any]) -> None:
        """Append one record as one line and force it to disk before returning. A record
        is JSON or is not written (NaN and infinities are not JSON)."""
        try:
            line = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
        except ValueError as exc:
            raise CnilabError(f"record {record.get('key')}: not valid JSON ({exc}); "
                              "not written") from None
        with open(self.results_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def results(self) -> Iterator[dict[str, Any]]:
        """Every complete record, in the order they were written. A line that is not a
        record, or a second record of a measurement already read, is refused naming the
        line: counted twice it would change every statistic."""
        if not self.results_path.is_file():
            return
        seen: dict[str, int] = {}
        with open(self.results_path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.endswith("\n"):
                    return  # torn tail: not a record
                where = f"{self.results_path}:{number}"
                try:
                    record = json.loads(line, parse_constant=_not_json)
                except (ValueError, RecursionError) as exc:
                    detail = exc.msg if isinstance(exc, json.JSONDecodeError) else (
                        "too deep" if isinstance(exc, RecursionError) else str(exc))
                    raise InputError(f"{where}: corrupt record: {detail}") from None
                problem = record_problem(record)
                if problem:
                    raise InputError(f"{where}: corrupt record: {problem}")
                key = record["key"]
                if key in seen:
                    raise InputError(f"{where}: a second record of {key[:120]} (the first is "
                                     f"line {seen[key]}); refused")
                seen[key] = number
                yield record

    def raw_path(self, seq: int, cell_slug: str, repetition: int | str, role: str,
                 ext: str) -> Path:
        return self.raw_dir / f"{seq:05d}-{cell_slug}-r{repetition}-{role}.{ext}"


def slug(text: str) -> str:
    """File-name-safe form of a cell id."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:120]
