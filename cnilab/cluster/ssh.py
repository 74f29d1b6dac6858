"""Commands on cluster nodes over one SSH connection each (paramiko).

Why not Ansible here: the benchmark engine issues hundreds of short commands per
measurement (``kubectl exec`` starts, /proc reads, kills) and needs live output from
running ones (a server's pid on its first line, a watch stream). One persistent SSH
connection per node serves that in milliseconds; Ansible keeps what it is good at,
desired state. The login is the inventory's (``ansible_user``, ``ansible_host``,
``ansible_port``, key); commands run as root through ``sudo -n`` when the login is not
root, as Ansible's ``become`` would.
"""

from __future__ import annotations

import select
import shlex
import socket
import subprocess
import time
from pathlib import Path

import paramiko

from cnilab.bench.executor import Completed, ExecutorError
from cnilab.cluster import hostkeys
from cnilab.inventory import Node


class SshError(ExecutorError):
    """A node could not be reached or a command could not be started on it (one line,
    naming the node); a measurement it interrupts is recorded as failed."""


def connect(node: Node, timeout: float) -> paramiko.SSHClient:
    """An SSH connection with the inventory's login, its host key checked against the
    inventory's known_hosts (recorded at first contact; cnilab.cluster.hostkeys).
    A changed key raises HostKeyChanged, one line naming the node."""
    client = paramiko.SSHClient()
    hostkeys.prepare(client, node.known_hosts)
    key = node.vars.get("ansible_ssh_private_key_file") or node.vars.get(
        "ansible_private_key_file")
    try:
        client.connect(node.address, port=node.port,
                       username=str(node.vars.get("ansible_user", "root")),
                       key_filename=str(Path(str(key)).expanduser()) if key else None,
                       timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                       allow_agent=True, look_for_keys=key is None)
    except paramiko.BadHostKeyException:
        client.close()
        assert node.known_hosts is not None
        raise hostkeys.HostKeyChanged(hostkeys.changed_message(
            node.name, node.address, node.port, node.known_hosts)) from None
    transport = client.get_transport()
    if transport is not None and transport.sock is not None:
        # small request/reply packets: without this, Nagle and delayed ACKs add ~40 ms
        # to every channel opened (measured: 44 ms -> 0.5 ms per open)
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def read_clock(client: paramiko.SSHClient, timeout: float,
               readings: int = 3) -> tuple[float, float, float]:
    """(remote clock, local send time, round trip) of the quickest of ``readings``
    clock reads through one open shell: the remote reading then lies within that round
    trip (a new exec per reading would put it near the end of a long session setup)."""
    transport = client.get_transport()
    if transport is None:
        raise paramiko.SSHException("the SSH connection closed")
    channel = transport.open_session(timeout=timeout)
    channel.settimeout(timeout)
    channel.exec_command("sh")
    replies = channel.makefile("r")
    taken = []
    try:
        for _ in range(readings):
            sent = time.time()
            channel.sendall(b"date +%s.%N\n")
            clock = float(replies.readline().strip())
            taken.append((time.time() - sent, sent, clock))
    finally:
        channel.close()
    round_trip, sent, clock = min(taken)
    return clock, sent, round_trip


def clock_skew(remote_clock: float, sent_at: float, received_at: float) -> float:
    """Remote minus local clock, taking the remote reading at the round trip's midpoint."""
    return remote_clock - (sent_at + received_at) / 2


class ChannelSession:
    """A command running over SSH, read like a subprocess (``kubectl.ExecSession``)."""

    def __init__(self, channel: paramiko.Channel, argv: list[str]) -> None:
        self.channel = channel
        self.argv = argv
        self._out = b""
        self._err = b""

    def _pump(self, wait_s: float) -> None:
        """Read whatever is buffered, after waiting up to ``wait_s`` for stdout data."""
        select.select([self.channel], [], [], max(wait_s, 0.0))
        while self.channel.recv_ready():
            self._out += self.channel.recv(65536)
        while self.channel.recv_stderr_ready():
            self._err += self.channel.recv_stderr(65536)

    def _ended(self) -> bool:
        # data travels before the exit status, so an exit with empty buffers is the end
        return (self.channel.closed or self.channel.exit_status_ready()) and not (
            self.channel.recv_ready() or self.channel.recv_stderr_ready())

    def poll(self) -> int | None:
        return self.channel.recv_exit_status() if self.channel.exit_status_ready() else None

    def first_line(self, timeout_s: float) -> str | None:
        """The next output line (None if none came in time or the command ended)."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0 or self._ended():
                return None
            self._pump(min(left, 0.05))
        line, _, self._out = self._out.partition(b"\n")
        return line.decode("utf-8", "replace")

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended():
            left = 0.05 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.argv, timeout or 0.0)
            self._pump(min(left, 0.05))
        self._pump(0.0)
        out, err, self._out, self._err = self._out, self._err, b"", b""
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def kill(self) -> None:
        """End the session (the remote process gets SIGHUP from sshd when its channel
        closes; the executor also kills by pid for certainty)."""
        self.channel.close()


class NodeShell:
    """One node's persistent SSH connection, running argv lists as root."""

    def __init__(self, node: Node, timeout: float = 15.0,
                 client: paramiko.SSHClient | None = None) -> None:
        self.node = node
        self.timeout = timeout
        try:
            self.client = client or connect(node, timeout)
        except (OSError, paramiko.SSHException) as exc:
            login = f"{node.vars.get('ansible_user', 'root')}@{node.address}"
            raise SshError(f"{node.name}: SSH to {login} failed: "
                           f"{exc or type(exc).__name__}") from None
        self.sudo = str(node.vars.get("ansible_user", "root")) != "root"
        self._reader: paramiko.Channel | None = None
        self._reader_out: paramiko.ChannelFile | None = None
        self._serial = 0

    def command(self, argv: list[str]) -> str:
        line = shlex.join(argv)
        return f"sudo -n -- {line}" if self.sudo else line

    def _channel(self, argv: list[str]) -> paramiko.Channel:
        try:
            transport = self.client.get_transport()
            if transport is None or not transport.is_active():   # reconnect once
                self.client = connect(self.node, self.timeout)
                self._reader = None
                transport = self.client.get_transport()
                assert transport is not None
            channel = transport.open_session(timeout=self.timeout)
            channel.exec_command(self.command(argv))
            return channel
        except (OSError, paramiko.SSHException) as exc:
            raise SshError(f"{self.node.name}: cannot run {argv[0]} over SSH: "
                           f"{exc or type(exc).__name__}") from None

    def start(self, argv: list[str]) -> ChannelSession:
        return ChannelSession(self._channel(argv), argv)

    def run(self, argv: list[str], timeout: float | None,
            input_text: str | None = None) -> Completed:
        started = time.monotonic()
        channel = self._channel(argv)
        if input_text is not None:
            channel.sendall(input_text.encode())
        channel.shutdown_write()
        session = ChannelSession(channel, argv)
        try:
            out, err = session.communicate(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            session.kill()
            out, err = session.communicate(timeout=5.0)   # what came before the kill
            timed_out = True
        code = session.poll()
        return Completed(argv, -9 if timed_out or code is None else code, out, err,
                         time.monotonic() - started, timed_out)

    def read_file(self, path: str, timeout: float = 10.0) -> str:
        """A node file's text through one shell kept open on the node: a new SSH
        session costs the node's session setup (PAM, ~0.1 s measured on Debian's sshd),
        one line to an open shell costs a round trip. The engine reads /proc/stat
        around every client run, so this keeps the CPU window tight."""
        if self._reader is None or self._reader.closed or self._reader.exit_status_ready():
            self._reader = self._channel(["sh"])   # reconnects once, like every command
            self._reader_out = self._reader.makefile("rb")
        self._serial += 1
        marker = f"--cnilab-end-{self._serial}--"
        assert self._reader is not None and self._reader_out is not None
        self._reader.settimeout(timeout)
        self._reader.sendall(f"cat {shlex.quote(path)} 2>/dev/null; s=$?; echo; "
                             f"echo {marker} $s\n".encode())
        lines: list[bytes] = []
        while True:
            line = self._reader_out.readline()
            if not line:
                raise OSError(f"{self.node.name}: the shell reading {path} ended")
            if line.startswith(marker.encode()):
                status = line.split()[-1]
                break
            lines.append(line)
        if status != b"0":
            raise OSError(f"{self.node.name}: cannot read {path}")
        return b"".join(lines)[:-1].decode("utf-8", "replace")   # the echo's newline

    def clock_offset(self) -> tuple[float, float]:
        """(this node's clock minus the local clock, its uncertainty: half a round trip)."""
        clock, sent, round_trip = read_clock(self.client, self.timeout)
        return clock_skew(clock, sent, sent + round_trip), round_trip / 2

    def close(self) -> None:
        self.client.close()
