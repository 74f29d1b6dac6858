"""The benchmark pod image, built on the node from the node's own pinned tools.

Why build it here instead of pulling one: the benchmark pods must run exactly the
iperf3 and netperf that `bench_tools` built from sha256-verified release sources, and
a Kubernetes image is only pinned when it is referenced by digest. Building the image
from those binaries (plus a static busybox for ``sh``, ``ping``, ``kill``, ``cat``)
gives a content-addressed OCI archive whose manifest digest is a pure function of the
bytes it holds: same binaries, same digest, on every run. containerd imports it under
``<name>:<tag>`` and ``<name>@sha256:<digest>``, and the pods reference the digest.
No registry is involved, so testbeds without outbound access work too.

Every layer entry is normalised (owner root, mtime 0, sorted order) so that nothing
but file contents decides the digest. Shared libraries are found with ``ldd`` and
copied to the same absolute paths, so RUNPATHs and the loader's default directories
keep working inside the image.

Runs on the managed nodes: standard library only, Python 3.6 compatible.
"""


import hashlib
import io
import json
import os
import re
import tarfile
from typing import Callable, Dict, List, Tuple

Runner = Callable[[List[str]], Tuple[int, str, str]]

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
# busybox applets the executor and the start-up probe use inside pods
APPLETS = ("sh", "cat", "kill", "sleep", "date", "ping", "echo", "true", "ls", "ps",
           "ip", "env", "grep", "wc", "head", "tail")
BIN_DIR = "/usr/local/bin"
# Go-style architecture names, as the image config's "architecture" field wants them
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
                 "s390x": "s390x"}

_LDD_PATH = re.compile(r"(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


class ImageError(Exception):
    pass


def library_paths(ldd_output: str) -> List[str]:
    """Absolute paths of the shared objects an ``ldd`` listing names (the loader too)."""
    found = []
    for line in ldd_output.splitlines():
        line = line.strip()
        if "not found" in line:
            raise ImageError("a shared library is missing: " + line)
        if "=>" in line:
            target = line.split("=>", 1)[1].strip()
            match = _LDD_PATH.match(target)
            if match:
                found.append(match.group(1))
        else:
            match = _LDD_PATH.match(line)
            if match:
                found.append(match.group(1))
    return sorted(set(found))


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _parents(path: str) -> List[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


def layer_entries(binaries: Dict[str, str], busybox: str, libraries: List[str],
                  applets=APPLETS) -> List[Tuple[str, str, str]]:
    """(kind, path in the image, source or link target) for every layer entry.

    ``binaries`` maps a name in ``BIN_DIR`` to the file on the node; libraries keep
    their own paths (resolved through symlinks: a link and its target both land).
    """
    entries = {}   # path -> (kind, value)
    for name, source in binaries.items():
        entries[BIN_DIR.strip("/") + "/" + name] = ("file", os.path.realpath(source))
    entries["bin/busybox"] = ("file", os.path.realpath(busybox))
    for applet in applets:
        entries["bin/" + applet] = ("symlink", "busybox")
    for library in libraries:
        path = library
        seen = 0
        while os.path.islink(path) and seen < 16:
            target = os.readlink(path)
            entries[path.strip("/")] = ("symlink", target)
            path = os.path.normpath(os.path.join(os.path.dirname(path), target))
            seen += 1
        entries[path.strip("/")] = ("file", path)
    entries["etc/passwd"] = ("text", "root:x:0:0:root:/root:/bin/sh\n")
    entries["etc/group"] = ("text", "root:x:0:\n")
    for directory in ("tmp", "root", "proc", "sys", "dev", "etc"):
        entries.setdefault(directory, ("dir", ""))
    for path in list(entries):
        for parent in _parents(path):
            entries.setdefault(parent, ("dir", ""))
    return sorted((kind, path, value) for path, (kind, value) in entries.items())


def _ordered(entries: List[Tuple[str, str, str]]) -> List[Tuple[str, str, str]]:
    return sorted(entries, key=lambda e: e[1])


def build_layer(entries: List[Tuple[str, str, str]]) -> bytes:
    """An uncompressed, reproducible layer tar of ``entries``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, path, value in _ordered(entries):
            info = tarfile.TarInfo(path)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o1777 if path == "tmp" else 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = value
                info.mode = 0o777
                tar.addfile(info)
            else:
                if kind == "text":
                    data = value.encode("utf-8")
                    info.mode = 0o644
                else:
                    with open(value, "rb") as handle:
                        data = handle.read()
                    info.mode = 0o755 if os.stat(value).st_mode & 0o111 else 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_blobs(layer: bytes, architecture: str, ref_name: str, labels: Dict[str, str],
                library_dirs: List[str]) -> Tuple[Dict[str, bytes], bytes, str]:
    """(blobs by digest, index.json, manifest digest) of a one-layer image."""
    layer_digest = _sha256(layer)
    env = ["PATH=" + BIN_DIR + ":/bin:/usr/bin:/sbin:/usr/sbin"]
    if library_dirs:
        env.append("LD_LIBRARY_PATH=" + ":".join(library_dirs))
    config = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": env, "Cmd": ["sleep", "infinity"], "Labels": labels,
                   "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": "cnilab bench_image: the node's pinned benchmark tools"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": _sha256(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest,
                    "size": len(layer)}],
        "annotations": {"org.opencontainers.image.title": "cnilab benchmark tools"},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = _sha256(manifest_bytes)
    tag = ref_name.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE, "digest": manifest_digest,
            "size": len(manifest_bytes),
            "platform": {"architecture": architecture, "os": "linux"},
            # containerd names the image from the first, OCI tools from the second
            "annotations": {"io.containerd.image.name": ref_name,
                            "org.opencontainers.image.ref.name": tag},
        }],
    }
    index_bytes = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    blobs = {layer_digest: layer, _sha256(config_bytes): config_bytes,
             manifest_digest: manifest_bytes}
    return blobs, index_bytes, manifest_digest


def write_archive(path: str, blobs: Dict[str, bytes], index: bytes) -> None:
    """An OCI image-layout tar at ``path``, written to a temporary name and renamed."""
    members = [("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
               ("index.json", index)]
    members += [("blobs/sha256/" + digest.split(":", 1)[1], data)
                for digest, data in sorted(blobs.items())]
    tmp = path + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def build(run: Runner, binaries: Dict[str, str], busybox: str, name: str, tag: str,
          machine: str, labels: Dict[str, str]) -> Dict[str, object]:
    """Everything about the image, computed from the node's files (nothing written)."""
    for label, path in [*binaries.items(), ("busybox", busybox)]:
        if not os.path.isfile(path):
            raise ImageError(f"{label}: {path} not found")
    libraries = []   # type: List[str]
    for path in sorted(set(os.path.realpath(p) for p in binaries.values())):
        rc, out, err = run(["ldd", path])
        if rc != 0:
            raise ImageError(f"ldd {path}: {(err or out).strip()}")
        libraries.extend(library_paths(out))
    libraries = sorted(set(libraries))
    architecture = ARCHITECTURES.get(machine, machine)
    entries = layer_entries(binaries, busybox, libraries)
    layer = build_layer(entries)
    library_dirs = sorted(set(os.path.dirname(p) for p in libraries))
    ref_name = name + ":" + tag
    blobs, index, digest = image_blobs(layer, architecture, ref_name, labels, library_dirs)
    files = {path: _file_sha256(value) for kind, path, value in entries if kind == "file"}
    return {"name": name, "tag": tag, "digest": digest, "reference": name + "@" + digest,
            "architecture": architecture, "layer_bytes": len(layer),
            "files_sha256": files, "blobs": blobs, "index": index}
