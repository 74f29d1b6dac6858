"""What `cnilab manifest` prints and the CNI roles apply: the pinned upstream install
file of a plugin release, patched for one mode of the study.

Stages: the source (pinned URL through the lock, or a local file the user names), the
documents (YAML stream, ``kind: List`` expanded), the plugin's structural patch
(cnilab/cni/<plugin>.py), the rendering with a provenance header. Parsing and
re-serialising YAML is deliberate: no regex ever edits a manifest.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cnilab import paths
from cnilab.cni.base import ClusterNetwork, ModeOptions, flatten
from cnilab.cni.registry import plugin_for
from cnilab.errors import InputError
from cnilab.manifests import lock
from cnilab.manifests.crds import custom_resource_problems


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (embedded JSON configs, scripts) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


@dataclass(frozen=True)
class Rendered:
    cni: str
    mode: str
    version: str
    source: str            # URL or local path
    source_sha256: str
    documents: list[dict[str, Any]]
    options: ModeOptions

    def text(self, network: ClusterNetwork, network_origin: str) -> str:
        header = [
            f"# cnilab manifest: {self.cni} {self.version}, mode {self.mode}, "
            f"{self.options.label}",
            f"# from {self.source}",
            f"# sha256 {self.source_sha256}",
            f"# pod CIDR {network.pod_cidr}; MTU "
            f"{network.mtu if network.mtu is not None else 'derived by the plugin'}; "
            f"node IPs {', '.join(network.node_ips)} ({network_origin})",
        ]
        body = yaml.dump_all(self.documents, Dumper=_BlockDumper, sort_keys=False, width=120)
        return "\n".join(header) + "\n---\n" + body


def release(cni: str, profile: str) -> tuple[str, str]:
    """(version, pinned URL) of a plugin in a pin profile."""
    pins = yaml.safe_load((paths.versions_dir() / "cni.yml").read_text(encoding="utf-8"))
    profiles = pins.get("profiles", {})
    if profile not in profiles:
        raise InputError(f"--profile {profile}: not in versions/cni.yml "
                         f"({', '.join(profiles)})")
    key = cni.replace("-", "_")
    version = profiles[profile].get(key)
    url = (pins.get("artifacts", {}).get(cni) or {}).get(version)
    if not version or not url:
        raise InputError(f"versions/cni.yml: no pinned install file for {cni} "
                         f"{version or '?'} (profile {profile})")
    return str(version), str(url)


def parse_documents(data: bytes, source: str) -> list[dict[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(data.decode("utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not a YAML manifest ({exc})") from None
    if not all(isinstance(d, dict) or d is None for d in documents):
        raise InputError(f"{source}: every YAML document must be a mapping")
    return flatten(documents)


def chart_values(archive: bytes, source: str) -> bytes:
    """The default values.yaml of a packaged Helm chart (<chart>/values.yaml)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            member = next((m for m in tar.getmembers()
                           if m.name.count("/") == 1 and m.name.endswith("/values.yaml")), None)
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise InputError(f"{source}: no <chart>/values.yaml in the archive")
            return handle.read()
    except tarfile.TarError as exc:
        raise InputError(f"{source}: not a Helm chart archive ({exc})") from None


def render(cni: str, mode: str, profile: str, network: ClusterNetwork,
           from_file: Path | None = None, cache_dir: Path | None = None,
           options: ModeOptions | None = None) -> Rendered:
    plugin = plugin_for(cni, mode)
    version, url = release(cni, profile)
    if from_file is not None:
        if not from_file.is_file():
            raise InputError(f"{from_file}: no such file")
        data, source = from_file.read_bytes(), str(from_file)
        digest = hashlib.sha256(data).hexdigest()
    else:
        data, digest, _ = lock.fetch(url, cache_dir=cache_dir or
                                     paths.project_root() / ".cache" / "manifests")
        source = url
    if source.endswith(".tgz"):
        data = chart_values(data, source)
    documents = plugin.patch(parse_documents(data, source), mode, network, version,
                             options or ModeOptions())
    problems = custom_resource_problems(documents)
    if problems:
        listing = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)"
                                             if len(problems) > 5 else "")
        raise InputError(f"{source}: custom resources do not match their CRDs: {listing}")
    return Rendered(cni, mode, version, source, digest, documents, options or ModeOptions())
