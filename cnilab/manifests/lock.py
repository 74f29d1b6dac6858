"""Pinned upstream install files: download once, record the sha256, verify ever after.

Why a lock: a CNI's install manifest at a pinned URL is what a result depends on, and
URLs can change underneath (a re-tagged release, a moved repository, a CDN serving
something else). ``versions/manifests.lock`` maps each URL to the sha256 of the bytes
it served the first time; every later fetch must match, or the run stops before
anything is applied. Values known in advance (from the upstream record of the file)
are committed, so a fresh clone already verifies.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from cnilab import paths
from cnilab.errors import CnilabError
from cnilab.rundir import atomic_write_text

Opener = Callable[[str], bytes]


class LockMismatch(CnilabError):
    """The bytes a pinned URL served are not the ones recorded."""


def lock_path() -> Path:
    return paths.versions_dir() / "manifests.lock"


def read_lock(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("sha256", {}) if isinstance(data, dict) else {}
    return {str(url): str(digest) for url, digest in entries.items()}


def _write_lock(path: Path, entries: dict[str, str]) -> None:
    header = "".join(line for line in (path.read_text(encoding="utf-8").splitlines(True)
                                       if path.exists() else [])
                     if line.startswith("#")) or (
        "# url -> sha256 of the bytes it served when first fetched (cnilab verifies every\n"
        "# later fetch against it; a mismatch stops the run). Written by cnilab.\n")
    body = header + yaml.safe_dump({"sha256": dict(sorted(entries.items()))},
                                   sort_keys=False, width=200)
    atomic_write_text(path, body)


def _download(url: str) -> bytes:
    # only https URLs reach here (checked by fetch)
    with urllib.request.urlopen(url, timeout=60) as response:
        data: bytes = response.read()
        return data


def cached_path(url: str, cache_dir: Path) -> Path:
    """Where ``fetch`` keeps a URL's verified bytes."""
    return cache_dir / hashlib.sha256(url.encode()).hexdigest()[:16]


def fetch(url: str, *, cache_dir: Path, lock: Path | None = None,
          opener: Opener = _download) -> tuple[bytes, str, bool]:
    """(bytes, sha256, newly recorded) of a pinned URL. A cached copy is used when its
    sha256 is the recorded one; otherwise the URL is fetched and checked."""
    lock = lock or lock_path()
    entries = read_lock(lock)
    recorded = entries.get(url)
    cached = cached_path(url, cache_dir)
    if recorded and cached.exists():
        data = cached.read_bytes()
        if hashlib.sha256(data).hexdigest() == recorded:
            return data, recorded, False
    if not url.startswith("https://"):
        raise CnilabError(f"{url}: cnilab fetches install files over https only")
    try:
        data = opener(url)
    except OSError as exc:
        raise CnilabError(f"{url}: download failed ({exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if recorded and digest != recorded:
        raise LockMismatch(f"{url}: served sha256 {digest}, but {lock.name} records "
                           f"{recorded}; nothing was applied. If upstream really changed the "
                           f"file, review it and remove its line from {lock}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, cached)
    if not recorded:
        entries[url] = digest
        _write_lock(lock, entries)
    return data, digest, not recorded
