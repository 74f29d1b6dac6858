"""Emulated SSH nodes: network namespaces that each run their own sshd, for running
the real-cluster roles and the SSH preflight over real SSH on one machine.

Why this and not localhost: roles that run against ``localhost`` would reconfigure the
build machine and cannot show per-node behaviour (hostnames, facts, ``fetch``,
idempotence per node). Each emulated node is:

- a network namespace on a test-owned bridge (its own links, routes, iptables, ipsets);
- a private mount namespace (``unshare --mount --propagation private``) in which
  ``/etc``, ``/var/lib``, ``/opt``, ``/usr/local``, ``/root`` and ``/run/cnilab`` are
  copy-on-write overlays or tmpfs, so whatever a role writes lands in the node's own
  scratch directory, never on this machine;
- its own UTS namespace (hostname), machine-id, ``/etc/hosts`` and a ``resolv.conf``
  that fails fast (there is no DNS here);
- an ``sshd`` bound to the node's address with its own host key and pid.

What it cannot be: a second kernel (kernel.* sysctls and modules are the machine's), a
systemd, or a different OS. Roles that need those run in check mode.

A node can carry the facts of an OS image (``OsImage``) that matter to cnilab: its
``/etc/os-release``, what its ``python3`` reports, whether its iproute2 prints routes as
JSON, and its cgroup layout. Each image's values say where they come from.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Each set of nodes has a tag: its bridge, namespaces, veths and subnet carry it, so
# sets with different tags live side by side (tag 0: cnlssh-*, 10.251.7.0/24)
BASE_SUBNET_OCTET = 7
# paths a node may write, each made private to the node
OVERLAY_DIRS = ("/etc", "/var/lib", "/opt", "/usr/local", "/root", "/run")
TMPFS_DIRS = ("/run/cnilab",)


@dataclass(frozen=True)
class OsImage:
    """What a node of a given OS image shows cnilab. ``python`` None: this machine's
    own interpreter; ``json_routes`` False: ``ip -j route`` prints text (iproute2 < 4.17);
    ``cgroup``: "v1" (a hybrid layout: controllers under a tmpfs, cgroup2 at
    ``unified``) or "v2" (the unified hierarchy mounted at /sys/fs/cgroup)."""

    os_release: str | None      # None: this machine's
    python: str | None
    json_routes: bool
    cgroup: str


def _os_release(name: str, version: str, version_id: str, codename: str) -> str:
    return "\n".join([f'NAME="{name}"', f'VERSION="{version}"', f"ID={name.lower()}",
                      "ID_LIKE=debian", f'PRETTY_NAME="{name} {version.split(" (")[0]}"',
                      f'VERSION_ID="{version_id}"', f"VERSION_CODENAME={codename}",
                      f"UBUNTU_CODENAME={codename}", ""])


# Sources: the Ubuntu archive's package versions in each release's -updates pocket
# (bionic: python3.6 3.6.9, iproute2 4.15.0-2ubuntu1; focal: python3.8 3.8.10, iproute2
# 5.5.0-1ubuntu1); iproute2 printed JSON routes from 4.17 on (`ip -j route` in 4.15 is
# accepted and prints text); both releases boot the hybrid cgroup v1 layout by default
# (systemd.unified_cgroup_hierarchy=0 is systemd 237/245's compiled default there).
OS_IMAGES = {
    # this machine's Debian 12 userland, with Debian 12's default unified hierarchy
    # (systemd 252) whatever layout the machine running the tests boots
    "debian-12": OsImage(None, python=None, json_routes=True, cgroup="v2"),
    "ubuntu-18.04": OsImage(_os_release("Ubuntu", "18.04.6 LTS (Bionic Beaver)", "18.04",
                                        "bionic"), python="3.6.9", json_routes=False,
                            cgroup="v1"),
    "ubuntu-20.04": OsImage(_os_release("Ubuntu", "20.04.6 LTS (Focal Fossa)", "20.04",
                                        "focal"), python="3.8.10", json_routes=True,
                            cgroup="v1"),
}

# FAKE python3 of an image whose Python this machine lacks. It reports the image's
# version; anything else runs on this machine's python3, except below the minimum that
# ansible-core's module_utils/basic.py enforces (_PY_MIN, 2.19: 3.8), where it fails as
# that check does: a one-line JSON failure and exit 1.
_PYTHON_SHIM = """#!/bin/sh
# cnilab test image: a Python {version} as ansible-core sees it
case "$1" in
  -V|--version) echo "Python {version}"; exit 0 ;;
  -c) case "$2" in *sys.version_info*) echo "{short}"; exit 0 ;; esac ;;
esac
if [ {too_old} = 1 ]; then
  echo '{{"failed": true, "msg": "ansible-core requires a minimum of Python version \
{minimum}. Current version: {version}"}}'
  exit 1
fi
exec /usr/bin/python3 "$@"
"""

# FAKE iproute2 < 4.17: `-j`/`-json` is accepted but `ip route` prints text
_IP_SHIM = """#!/bin/sh
# cnilab test image: iproute2 without JSON routes
json=0; object=""; for a in "$@"; do
  case "$a" in -j|-json) json=1 ;; -*) ;; *) [ -z "$object" ] && object=$a ;; esac
done
case "$object" in r|ro|rou|rout|route)
  if [ $json = 1 ]; then
    set -- $(for a in "$@"; do case "$a" in -j|-json) ;; *) printf '%s ' "$a" ;; esac; done)
  fi ;;
esac
exec /usr/sbin/ip "$@"
"""


def _image_setup(image: OsImage, files: Path) -> list[str]:
    """Shell commands (run in the node's mount namespace) that give it the image."""
    from cnilab.cluster.preflight import min_target_python

    commands = []
    if image.os_release is not None:
        # root's shell start-up files are this machine's (they may put its own Pythons
        # first on PATH); an image's root has the distribution's, which keep sshd's PATH
        commands.append("rm -f /root/.bashrc /root/.profile /root/.bash_profile")
        (files / "os-release").write_text(image.os_release)
        # /etc/os-release is a symlink into /usr on Debian: replace the link, never
        # write through it
        commands.append(f"rm -f /etc/os-release && cp {files / 'os-release'} /etc/os-release")
    if image.python is not None:
        minimum = min_target_python()
        version = tuple(int(v) for v in image.python.split("."))
        (files / "python3").write_text(_PYTHON_SHIM.format(
            version=image.python, short=".".join(image.python.split(".")[:2]),
            too_old=int(version < minimum), minimum=".".join(map(str, minimum))))
        commands.append(f"install -m 0755 {files / 'python3'} /usr/local/bin/python3")
    if not image.json_routes:
        (files / "ip").write_text(_IP_SHIM)
        commands.append(f"install -m 0755 {files / 'ip'} /usr/local/bin/ip")
    if image.cgroup == "v1":
        commands.append("mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup && "
                        "mkdir /sys/fs/cgroup/unified /sys/fs/cgroup/memory "
                        "/sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/pids && "
                        "mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified")
    else:
        commands.append("mount -t cgroup2 cgroup2 /sys/fs/cgroup")
    return commands


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)


@dataclass
class Node:
    name: str
    ip: str
    netns: str
    scratch: Path
    process: subprocess.Popen[bytes] | None = None
    image: OsImage | None = None

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node (its netns and its mount namespace)."""
        assert self.process is not None
        return _run("nsenter", "-t", str(self.process.pid), "-n", "-m", "-u", "--",
                    *cmd, check=check)

    def path(self, node_path: str) -> Path:
        """Where a file the node wrote under an overlaid directory lives on this machine."""
        for top in OVERLAY_DIRS:
            if node_path == top or node_path.startswith(top + "/"):
                return self.scratch / "upper" / top.strip("/") / node_path[len(top):].lstrip("/")
        raise ValueError(f"{node_path} is not under an overlaid directory")


@dataclass
class SshNodes:
    """A set of emulated nodes; use as a context manager (everything is removed after)."""

    names: list[str]
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cnlssh-")))
    nodes: list[Node] = field(default_factory=list)
    # node name -> OS image name (OS_IMAGES); the others show this machine's userland
    images: dict[str, str] = field(default_factory=dict)
    tag: int = 0

    @property
    def prefix(self) -> str:
        return "cnlssh" if self.tag == 0 else f"cnlssh{self.tag}"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def subnet(self) -> str:
        return f"10.251.{BASE_SUBNET_OCTET + self.tag}"

    @property
    def controller_ip(self) -> str:
        return f"{self.subnet}.1"

    @property
    def key(self) -> Path:
        return self.workdir / "id_ed25519"

    @property
    def control_path_dir(self) -> Path:
        return self.workdir / "cp"

    def __enter__(self) -> SshNodes:
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def _up(self) -> None:
        self.down_links()
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        self.control_path_dir.mkdir()
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.controller_ip}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for index, name in enumerate(self.names):
            node = Node(name=name, ip=f"{self.subnet}.{11 + index}",
                        netns=f"{self.prefix}-{index}", scratch=self.workdir / name,
                        image=OS_IMAGES[self.images[name]] if name in self.images else None)
            self.nodes.append(node)
            self._start(node, index)
        for node in self.nodes:
            self._wait_ssh(node)

    def _start(self, node: Node, index: int) -> None:
        host_veth = f"{self.prefix}-v{index}"
        _run("ip", "netns", "add", node.netns)
        _run("ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0",
             "netns", node.netns)
        _run("ip", "link", "set", host_veth, "master", self.bridge, "up")
        for cmd in (("ip", "addr", "add", f"{node.ip}/24", "dev", "eth0"),
                    ("ip", "link", "set", "eth0", "up"), ("ip", "link", "set", "lo", "up"),
                    ("ip", "route", "add", "default", "via", self.controller_ip)):
            _run("ip", "netns", "exec", node.netns, *cmd)
        files = node.scratch / "files"
        files.mkdir(parents=True)
        (files / "hostname").write_text(node.name + "\n")
        (files / "machine-id").write_text(os.urandom(16).hex() + "\n")
        (files / "hosts").write_text(f"127.0.0.1 localhost\n{node.ip} {node.name}\n")
        (files / "resolv.conf").write_text("# emulated node: no DNS\n"
                                           "options timeout:1 attempts:1\n")
        (files / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(files / "host_key"))
        (files / "sshd_config").write_text("\n".join([
            f"ListenAddress {node.ip}", f"HostKey {files / 'host_key'}",
            f"PidFile {node.scratch / 'sshd.pid'}", "PermitRootLogin prohibit-password",
            f"AuthorizedKeysFile {files / 'authorized_keys'}", "StrictModes no",
            "PasswordAuthentication no", "UsePAM no", "UseDNS no", "LogLevel ERROR",
            "Subsystem sftp internal-sftp", ""]))
        mounts = []
        for top in OVERLAY_DIRS:
            upper = node.scratch / "upper" / top.strip("/")
            work = node.scratch / "work" / top.strip("/")
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            mounts.append(f"mount -t overlay overlay -o lowerdir={top},upperdir={upper},"
                          f"workdir={work} {top}")
        for top in TMPFS_DIRS:
            mounts.append(f"mkdir -p {top} && mount -t tmpfs tmpfs {top}")
        for name, target in (("hostname", "/etc/hostname"), ("machine-id", "/etc/machine-id"),
                             ("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf")):
            mounts.append(f"cp {files / name} {target}")
        mounts.append("mount -t bpf bpf /sys/fs/bpf")
        if node.image is not None:
            mounts += _image_setup(node.image, files)
        script = " && ".join([*mounts, f"hostname {node.name}", "mkdir -p /run/sshd",
                              f"exec /usr/sbin/sshd -D -e -f {files / 'sshd_config'}"])
        log = open(node.scratch / "sshd.log", "wb")  # noqa: SIM115 - kept for the process
        node.process = subprocess.Popen(
            ["ip", "netns", "exec", node.netns, "unshare", "--uts", "--mount",
             "--propagation", "private", "--", "sh", "-c", script],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_ssh(self, node: Node) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert node.process is not None
            if node.process.poll() is not None:
                raise RuntimeError(f"sshd of {node.name} exited: "
                                   f"{(node.scratch / 'sshd.log').read_text()}")
            probe = _run("ssh", *self.ssh_options(), f"root@{node.ip}", "hostname", check=False)
            if probe.returncode == 0 and probe.stdout.strip() == node.name:
                return
            time.sleep(0.1)
        raise RuntimeError(f"sshd of {node.name} did not answer on {node.ip}:22")

    def ssh_options(self) -> list[str]:
        return ["-i", str(self.key), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]

    def inventory(self, path: Path, control_plane: int = 1) -> Path:
        """An inventory in the shape cnilab documents (control_plane/workers, node_ip)."""

        def host(node: Node) -> dict[str, object]:
            # an image's python3 is where its OS has it on PATH
            python = "/usr/local/bin/python3" if node.image and node.image.python \
                else "/usr/bin/python3"
            return {"ansible_host": node.ip, "node_ip": node.ip, "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_python_interpreter": python}

        groups = {
            "control_plane": {"hosts": {n.name: host(n) for n in self.nodes[:control_plane]}},
            "workers": {"hosts": {n.name: host(n) for n in self.nodes[control_plane:]}},
        }
        cp = self.control_path_dir / "%C"
        path.write_text(yaml.safe_dump({"all": {
            # emulated nodes get new host keys on every start: nothing to record
            "vars": {"ansible_host_key_checking": False,
                     "ansible_ssh_common_args":
                     "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                     f"-o ControlMaster=auto -o ControlPersist=30s -o ControlPath={cp}"},
            "children": groups}}, sort_keys=False))
        return path

    def down_links(self) -> None:
        """Remove what this or a previous (killed) run left: processes in the nodes'
        namespaces (waited for: a namespace, and the veth into it, outlive
        `ip netns del` while a process still runs there), the namespaces, any host-side
        veth and the bridge."""
        listing = _run("ip", "-o", "netns", "list", check=False).stdout
        names = [line.split()[0] for line in listing.splitlines()
                 if line.split() and line.split()[0].startswith(f"{self.prefix}-")]
        pids = [int(pid) for name in names
                for pid in _run("ip", "netns", "pids", name, check=False).stdout.split()]
        for pid in pids:
            _kill(pid)
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
            time.sleep(0.05)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name in names:
            _run("ip", "netns", "del", name, check=False)
        links = _run("ip", "-o", "link", "show", check=False).stdout
        for line in links.splitlines():
            link = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if link.startswith(f"{self.prefix}-v"):
                _run("ip", "link", "del", link, check=False)
        _run("ip", "link", "del", self.bridge, check=False)

    def down(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                _kill(node.process.pid)
                node.process.wait(timeout=10)
        # ssh ControlPersist masters of this run
        for master in self.control_path_dir.glob("*") if self.control_path_dir.exists() else []:
            _run("ssh", "-o", f"ControlPath={master}", "-O", "exit", "x", check=False)
        self.down_links()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
