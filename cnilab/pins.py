"""The pin file set (``versions/``): the one source of every version a result depends on.

Python reads the YAML files here; the playbooks read the same files with
``ansible.builtin.include_vars`` so neither side carries a version literal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnilab import paths
from cnilab.errors import SpecError
from cnilab.yamlpos import load_file

PIN_FILES = ("tools.yml", "kubernetes.yml", "cni.yml")


@dataclass(frozen=True)
class Pins:
    """All pin files, parsed, with the sha256 of each file for the manifest."""

    tools: dict[str, dict[str, Any]]
    kubernetes_profiles: dict[str, dict[str, Any]]
    cni_profiles: dict[str, dict[str, Any]]
    file_sha256: dict[str, str]

    def tool_version(self, tool: str) -> str:
        return str(self.tools[tool]["version"])

    def as_record(self) -> dict[str, Any]:
        """JSON-ready copy for manifest.json."""
        return {
            "tools": self.tools,
            "kubernetes_profiles": self.kubernetes_profiles,
            "cni_profiles": self.cni_profiles,
            "files_sha256": self.file_sha256,
        }


def _section(data: Any, path: Path, key: str) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise SpecError(str(path), 1, f"pin file must have a mapping '{key}'")
    section: dict[str, dict[str, Any]] = data[key]
    for name, value in section.items():
        if not isinstance(value, dict):
            raise SpecError(str(path), None, f"'{key}.{name}' must be a mapping")
    return section


def load_pins(directory: Path | None = None) -> Pins:
    """Load and minimally check ``versions/*.yml``."""
    directory = directory or paths.versions_dir()
    parsed: dict[str, tuple[Any, Path]] = {}
    digests: dict[str, str] = {}
    for name in PIN_FILES:
        path = directory / name
        data, text = load_file(path)
        parsed[name] = (data, path)
        digests[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    tools = _section(*parsed["tools.yml"], "tools")
    for tool, entry in tools.items():
        if "version" not in entry:
            raise SpecError(str(directory / "tools.yml"), None, f"tools.{tool} has no 'version'")
    return Pins(
        tools=tools,
        kubernetes_profiles=_section(*parsed["kubernetes.yml"], "profiles"),
        cni_profiles=_section(*parsed["cni.yml"], "profiles"),
        file_sha256=digests,
    )
