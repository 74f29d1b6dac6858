"""The cluster target's SSH transport, over real SSH to an emulated node (its own sshd in
its own namespaces): commands with stdin, a live session read line by line (how the
Kubernetes executor learns a server's pid), a session ended early, a timeout, and the
clock offset."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshnodes import SshNodes

from cnilab.cluster.ssh import NodeShell
from cnilab.inventory import load_inventory

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeShell]:
    with SshNodes(["sh1", "sh2"]) as nodes:
        inventory = nodes.inventory(tmp_path_factory.mktemp("inv") / "hosts.yml")
        node = load_inventory(inventory)[0]
        shell = NodeShell(node)
        yield shell
        shell.close()


def test_run_with_stdin_and_exit_status(shell: NodeShell) -> None:
    done = shell.run(["sh", "-c", "cat; echo err >&2; hostname; exit 3"], 10.0, "fed\n")
    assert done.returncode == 3 and not done.timed_out
    assert done.stdout.splitlines() == ["fed", "sh1"]    # the node's own UTS namespace
    assert done.stderr.strip() == "err"
    # argv is quoted as argv: no shell expansion of arguments
    assert shell.run(["echo", "$HOME", "a b"], 10.0).stdout == "$HOME a b\n"


def test_session_lines_then_kill(shell: NodeShell) -> None:
    session = shell.start(["sh", "-c", "echo $$; echo second; exec sleep 30"])
    pid = session.first_line(10.0)
    assert pid is not None and pid.isdigit()
    assert session.first_line(10.0) == "second"
    assert session.first_line(0.3) is None and session.poll() is None   # still running
    assert shell.run(["kill", "-TERM", pid], 10.0).returncode == 0
    out, _ = session.communicate(timeout=10.0)
    assert out == "" and session.poll() is not None


def test_timeout_ends_the_command(shell: NodeShell) -> None:
    started = time.monotonic()
    done = shell.run(["sleep", "20"], 0.5)
    assert done.timed_out and done.returncode == -9
    assert time.monotonic() - started < 5


def test_files_read_through_one_open_shell(shell: NodeShell) -> None:
    first = shell.read_file("/proc/stat")
    assert first.startswith("cpu ") and first.endswith("\n")
    assert shell.read_file("/etc/hostname").strip() == "sh1"   # the node's own /etc
    reader = shell._reader
    shell.run(["sh", "-c", "printf 'no newline' > /tmp/cnilab-read-test"], 10.0)
    assert shell.read_file("/tmp/cnilab-read-test") == "no newline"
    assert shell._reader is reader       # the same shell served every read
    with pytest.raises(OSError, match="cannot read /nonexistent"):
        shell.read_file("/nonexistent")
    assert shell.read_file("/etc/hostname").strip() == "sh1"   # and goes on after a miss


def test_clock_offset_of_a_node_on_this_machine(shell: NodeShell) -> None:
    offset, uncertainty = shell.clock_offset()
    assert abs(offset) < 0.05 and 0 <= uncertainty < 0.05   # the same kernel clock


def test_login_that_is_not_root_goes_through_sudo(tmp_path: Path, shell: NodeShell) -> None:
    node = shell.node
    other = type(node)(node.name, node.group, node.node_ip, {**node.vars,
                                                               "ansible_user": "bench"})
    argv = ["kubectl", "get", "pods"]
    assert NodeShell(other, client=shell.client).command(argv) == "sudo -n -- kubectl get pods"
    assert shell.command(argv) == "kubectl get pods"


def test_unreachable_node_is_one_line_naming_it(shell: NodeShell) -> None:
    """An emulated node's address on a port where nothing listens: refused at once,
    and the traffic never leaves the test's own bridge."""
    from cnilab.cluster.ssh import SshError

    node = shell.node
    closed = type(node)("gone", node.group, node.node_ip, {**node.vars, "ansible_port": 1})
    with pytest.raises(SshError, match=rf"^gone: SSH to root@{node.address} failed: "):
        NodeShell(closed, timeout=2.0)
