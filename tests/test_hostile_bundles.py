"""Bundles come from other people: `cnilab verify` reads nothing outside the bundle and
writes nothing beyond its caps. Each bundle here is crafted as a hostile sender would."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from cnilab.bundle import MAX_EXTRACTED_BYTES, SUMS, verify
from cnilab.errors import InputError


def _record(raw: str) -> dict[str, Any]:
    return {"key": "c#r1", "cell_id": "c", "cell": {}, "status": "ok", "warmup": False,
            "repetition": 1, "metrics": {"throughput_gbps": 1.0}, "raw": {"client": raw},
            "seq": 1, "tool": "iperf3"}


def _bundle(path: Path, files: dict[str, bytes], sums: str | None = None) -> Path:
    listing = sums if sums is not None else "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {**files, SUMS: listing.encode()}.items():
            info = tarfile.TarInfo(f"run/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_checksum_line_outside_the_bundle_is_refused(tmp_path: Path) -> None:
    """A SHA256SUMS line naming /etc/passwd with its real hash would otherwise verify as a
    match: an oracle for any file on the reader's machine."""
    secret = Path("/etc/passwd")
    files = {"results.jsonl": b""}
    for name in (str(secret), "../../../etc/passwd", "raw/../../x"):
        digest = hashlib.sha256(secret.read_bytes()).hexdigest()
        sums = f"{hashlib.sha256(b'').hexdigest()}  results.jsonl\n{digest}  {name}\n"
        bundle = _bundle(tmp_path / "b.tar.gz", files, sums)
        with pytest.raises(InputError) as info:
            verify(bundle)
        assert str(info.value) == f"{bundle}: {SUMS}:2 names {name!r}, a path outside the " \
            "bundle; refused"
    bundle = _bundle(tmp_path / "c.tar.gz", files, "just some words\n")
    with pytest.raises(InputError, match=f"{SUMS}:1: not '<sha256>  <path>'"):
        verify(bundle)


def test_a_record_reading_outside_the_bundle_is_refused(tmp_path: Path) -> None:
    line = json.dumps(_record("/etc/passwd")).encode() + b"\n"
    bundle = _bundle(tmp_path / "b.tar.gz", {"results.jsonl": line, "summary.csv": b""})
    with pytest.raises(InputError, match=r"record c#r1 raw names '/etc/passwd', a path outside "
                                         "the bundle; refused"):
        verify(bundle)


def test_a_gzip_bomb_is_refused_before_it_is_written(tmp_path: Path) -> None:
    """A member whose header says 1 GiB: refused at its header; nothing of it is read
    (the data is not even there) and nothing is written."""
    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("run/zeros")
        info.size = 1 << 30
        tar.addfile(info)                  # the header alone: no data follows
    with pytest.raises(InputError) as info_:
        verify(path)
    assert f"refused at 'run/zeros': extracting it would write more than 100000 files or " \
        f"{MAX_EXTRACTED_BYTES // (1024 * 1024)} MiB" in str(info_.value)


def test_a_duplicated_record_in_a_bundle_is_refused(tmp_path: Path) -> None:
    line = json.dumps(_record("raw/c.json")).encode() + b"\n"
    bundle = _bundle(tmp_path / "b.tar.gz", {"results.jsonl": line * 2,
                                             "raw/c.json": b"{}", "summary.csv": b""})
    with pytest.raises(InputError, match=r"results.jsonl:2: a second record of c#r1"):
        verify(bundle)
