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

What it cannot be: a second kernel (kernel.* sysctls, modules, cgroups are the
machine's), a systemd, or a different OS. Roles that need those run in check mode.
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

BRIDGE = "cnlssh-br"
SUBNET_PREFIX = "10.251.7"
CONTROLLER_IP = f"{SUBNET_PREFIX}.1"
# paths a node may write, each made private to the node
OVERLAY_DIRS = ("/etc", "/var/lib", "/opt", "/usr/local", "/root", "/run")
TMPFS_DIRS = ("/run/cnilab",)


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)


@dataclass
class Node:
    name: str
    ip: str
    netns: str
    scratch: Path
    process: subprocess.Popen[bytes] | None = None

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
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{CONTROLLER_IP}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        for index, name in enumerate(self.names):
            node = Node(name=name, ip=f"{SUBNET_PREFIX}.{11 + index}",
                        netns=f"cnlssh-{index}", scratch=self.workdir / name)
            self.nodes.append(node)
            self._start(node, index)
        for node in self.nodes:
            self._wait_ssh(node)

    def _start(self, node: Node, index: int) -> None:
        host_veth = f"cnlssh-v{index}"
        _run("ip", "netns", "add", node.netns)
        _run("ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0",
             "netns", node.netns)
        _run("ip", "link", "set", host_veth, "master", BRIDGE, "up")
        for cmd in (("ip", "addr", "add", f"{node.ip}/24", "dev", "eth0"),
                    ("ip", "link", "set", "eth0", "up"), ("ip", "link", "set", "lo", "up"),
                    ("ip", "route", "add", "default", "via", CONTROLLER_IP)):
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
            return {"ansible_host": node.ip, "node_ip": node.ip, "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_python_interpreter": "/usr/bin/python3"}

        groups = {
            "control_plane": {"hosts": {n.name: host(n) for n in self.nodes[:control_plane]}},
            "workers": {"hosts": {n.name: host(n) for n in self.nodes[control_plane:]}},
        }
        cp = self.control_path_dir / "%C"
        path.write_text(yaml.safe_dump({"all": {
            "vars": {"ansible_ssh_common_args":
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
                 if line.split() and line.split()[0].startswith("cnlssh-")]
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
            if link.startswith("cnlssh-v"):
                _run("ip", "link", "del", link, check=False)
        _run("ip", "link", "del", BRIDGE, check=False)

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
