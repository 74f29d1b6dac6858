"""The benchmark pod image: built for real from this machine's iperf3/netperf and static
busybox, checked as an OCI archive by skopeo, and run: its root filesystem carries
working tools (a real iperf3 transfer inside a test-owned namespace, chrooted into the
image). Importing it into containerd needs a node with containerd (docs/real-clusters.md).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.cnilab.cluster.plugins.module_utils import bench_image  # noqa: E402

from cnilab.targets.cluster import GATE_PING  # noqa: E402

BINARIES = {"iperf3": "/usr/bin/iperf3", "netperf": "/usr/bin/netperf",
            "netserver": "/usr/bin/netserver", "date": "/bin/date"}
BUSYBOX = "/bin/busybox"
NETNS = "cnlimg-t"


def _run(argv: list[str]) -> tuple[int, str, str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _need_tools() -> None:
    missing = [p for p in [*BINARIES.values(), BUSYBOX] if not os.path.isfile(p)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/install-system-deps.sh test)")


def test_ldd_listing_parsed() -> None:
    listing = """\
\tlinux-vdso.so.1 (0x00007ffc)
\tlibiperf.so.0 => /opt/cnilab/bench/iperf3-x/lib/libiperf.so.0 (0x00007f1)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)
"""
    assert bench_image.library_paths(listing) == [
        "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
        "/opt/cnilab/bench/iperf3-x/lib/libiperf.so.0"]
    with pytest.raises(bench_image.ImageError, match=r"libsctp\.so\.1 => not found"):
        bench_image.library_paths("\tlibsctp.so.1 => not found\n")


def _build() -> dict[str, object]:
    return bench_image.build(_run, BINARIES, BUSYBOX, "cnilab.local/bench", "test",
                             platform.machine(), {"io.cnilab.tool.iperf3": "3.12"})


def test_image_digest_depends_only_on_contents(tmp_path: Path) -> None:
    _need_tools()
    first, second = _build(), _build()
    assert first["digest"] == second["digest"]
    assert str(first["reference"]) == f"cnilab.local/bench@{first['digest']}"
    files = first["files_sha256"]
    assert isinstance(files, dict) and "usr/local/bin/iperf3" in files and "bin/busybox" in files
    # a different tag changes the index only, never the image
    other = bench_image.build(_run, BINARIES, BUSYBOX, "cnilab.local/bench", "other",
                              platform.machine(), {"io.cnilab.tool.iperf3": "3.12"})
    assert other["digest"] == first["digest"]
    labelled = bench_image.build(_run, BINARIES, BUSYBOX, "cnilab.local/bench", "test",
                                 platform.machine(), {"io.cnilab.tool.iperf3": "3.17"})
    assert labelled["digest"] != first["digest"]


def _unpack(archive: Path, rootfs: Path) -> dict[str, object]:
    layout = archive.parent / "layout"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="tar")
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    with tarfile.open(layout / "blobs" / "sha256" /
                      manifest["layers"][0]["digest"].split(":")[1]) as tar:
        tar.extractall(rootfs, filter="tar")
    return {"index": index, "manifest": manifest}


@pytest.mark.root
def test_archive_is_an_oci_image_whose_tools_run(tmp_path: Path) -> None:
    _need_tools()
    built = _build()
    archive = tmp_path / "image.tar"
    bench_image.write_archive(str(archive), built.pop("blobs"),  # type: ignore[arg-type]
                              built.pop("index"))  # type: ignore[arg-type]
    if shutil.which("skopeo"):
        proc = subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}"],
                              capture_output=True, text=True, check=True)
        seen = json.loads(proc.stdout)
        assert seen["Digest"] == built["digest"]
        assert seen["Os"] == "linux" and seen["Architecture"] == built["architecture"]
    rootfs = tmp_path / "rootfs"
    layout = _unpack(archive, rootfs)
    annotations = layout["index"]["manifests"][0]["annotations"]  # type: ignore[index]
    assert annotations["io.containerd.image.name"] == "cnilab.local/bench:test"
    env = {"PATH": "/usr/local/bin:/bin"}
    versions = subprocess.run(["/usr/sbin/chroot", str(rootfs), "sh", "-c",
                               "iperf3 --version; netperf -V; /usr/local/bin/date +%s.%N"],
                              capture_output=True, text=True, env=env, check=True).stdout
    assert "iperf 3.12" in versions and "Netperf version 2.7.0" in versions
    # coreutils' date by path: busybox sh runs its own (no nanoseconds) for a bare `date`
    assert re.search(r"^\d+\.\d{9}$", versions, re.MULTILINE), versions
    # a real transfer with the image's own binaries, in a namespace this test owns
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    try:
        # what a container runtime provides: /dev and /proc, in a private mount namespace
        # the readiness gate's ping (busybox's) first, then a transfer
        inside = (f"ip link set lo up && {' '.join(GATE_PING)} 127.0.0.1 >&2 && "
                  "iperf3 -s -1 -D -B 127.0.0.1 && sleep 0.5 && iperf3 -c 127.0.0.1 -t 1 -J")
        proc = subprocess.run(
            ["ip", "netns", "exec", NETNS, "unshare", "--mount", "--propagation", "private",
             "sh", "-c", f"mount --rbind /dev {rootfs}/dev && mount -t proc proc "
             f"{rootfs}/proc && exec /usr/sbin/chroot {rootfs} sh -c '{inside}'"],
            capture_output=True, text=True, env=env, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["end"]["sum_received"]["bytes"] > 0
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)


def test_module_is_idempotent(tmp_path: Path) -> None:
    """Through Ansible's module runner: built once, unchanged the second time."""
    _need_tools()
    dest = tmp_path / "images" / "bench.tar"
    args = json.dumps({"binaries": BINARIES, "busybox": BUSYBOX, "name": "cnilab.local/bench",
                       "tag": "t", "dest": str(dest), "labels": {"io.cnilab.tool.iperf3": "3.12"}})

    def module() -> dict[str, object]:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("ansible")), "localhost", "-c", "local",
             "-m", "cnilab.cluster.bench_image", "-a", args, "-o"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                 "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return dict(json.loads(proc.stdout.split("=>", 1)[1]))

    first = module()
    assert first["changed"] is True and dest.is_file()
    record = json.loads(Path(f"{dest}.json").read_text())
    assert record["digest"] == first["digest"]
    second = module()
    assert second["changed"] is False and second["digest"] == first["digest"]
