"""One owner per lab, and clean exits on every signal, tried as an unlucky user would:
a second command on a busy lab, a run started over someone's `lab up`, SIGTERM and
SIGHUP in the middle of a run, SIGTERM in the middle of a lab build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import processes
import pytest

from cnilab.lab import core

pytestmark = [pytest.mark.root, pytest.mark.e2e]

SPEC = """\
name: owner
matrix: [{cni: flannel, mode: vxlan}]
placements: [intra-host, inter-host]
tests:
  - suite: iperf3-tcp
    params: {duration_s: 1, omit_s: 0}
repetitions: 40
warmup: 0
"""


# what Ansible unpacks the lab's module into (ansible's AnsiballZ wrapper:
# ansible_<module>_payload_*); other modules' are other tests' business
LAB_PAYLOADS = "ansible_*netns_lab*_payload_*"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _cnilab(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("cnilab")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})


def _wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _records(out: Path) -> int:
    found = list(out.glob("*/results.jsonl"))
    return len(found[0].read_text().splitlines()) if found else 0


def _processes(name: str) -> list[str]:
    """Live processes whose command line names ``name``, outside the emulated SSH nodes
    (tests/processes.py)."""
    return processes.live(name, full_command=True)


def _lab_builders() -> list[int]:
    """The default lab's build processes (the playbook and what it starts carry the
    builder mark; Ansible runs of tests beside this one do not)."""
    return core.builder_pids()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_busy_lab_refuses_others_and_a_signal_ends_the_run_cleanly(
        cli: Any, clean_lab: None, tmp_path: Path, signum: int) -> None:
    spec = tmp_path / "owner.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "runs"
    run = _cnilab("run", str(spec), "--lab", "netns", "--out", str(out))
    try:
        _wait_for(lambda: _records(out) >= 1, 120, "the first measurement")
        for args in (("lab", "up", "--cni", "calico", "--mode", "bgp"), ("lab", "down"),
                     ("run", str(spec), "--lab", "netns", "--out", str(tmp_path / "r2"))):
            refused = cli(*args)
            assert refused.returncode == 1, refused.stderr
            line = refused.stderr.strip()
            assert line.startswith(f"cnilab: the netns lab is in use by pid {run.pid} "
                                   f"(`cnilab run {spec} --lab netns --out {out}`, since "), line
            assert len(line.splitlines()) == 1
        assert not (tmp_path / "r2").exists()
        run.send_signal(signum)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 128 + signum, err
    assert f"interrupted ({signal.Signals(signum).name})" in err
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "state.json").read_text())["status"] == "interrupted"
    assert not any(core.leftovers(None).values())          # the lab went down with the run
    assert not _processes("iperf3")
    # the lab is free again
    assert cli("lab", "status", "--json").returncode == 0


def test_a_run_does_not_tear_down_a_lab_it_did_not_build(cli: Any, clean_lab: None,
                                                         tmp_path: Path) -> None:
    """A run builds its modes in instances of their own (netns:1, ...): a lab brought up
    with `lab up` stays as it is, and one a killed run left behind is refused by name."""
    assert cli("lab", "up", "--cni", "flannel", "--mode", "host-gw", "--quiet").returncode == 0
    built = sorted(core.lab_namespaces())
    spec = tmp_path / "small.yaml"
    spec.write_text(SPEC)
    killed = _cnilab("run", str(spec), "--lab", "netns", "--out", str(tmp_path / "killed"))
    try:
        _wait_for(lambda: _records(tmp_path / "killed") >= 1, 120, "the first measurement")
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    assert core.lab_namespaces("cnl.1")                 # the killed run's lab is left
    (killed_run,) = (tmp_path / "killed").iterdir()
    small = tmp_path / "small1.yaml"
    small.write_text(SPEC.replace("repetitions: 40", "repetitions: 1"))
    refused = cli("run", str(small), "--lab", "netns", "--out", str(tmp_path / "runs"))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"cnilab: a netns lab built by run {killed_run.name} is up; bring it down (`cnilab "
        "lab down`) or pass --replace-lab")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*/results*"))
    replaced = cli("run", str(small), "--lab", "netns", "--out", str(tmp_path / "runs"),
                   "--replace-lab")
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(core.lab_namespaces()) == built        # `lab up`'s lab: still up, untouched
    assert not core.lab_namespaces("cnl.1")
    assert cli("lab", "down", "--quiet").returncode == 0


def test_sigterm_during_a_lab_build_stops_the_playbook_and_leaves_nothing(
        tmp_path: Path, clean_lab: None) -> None:
    home = tmp_path / "home"
    home.mkdir()
    payloads = set(Path("/tmp").glob(LAB_PAYLOADS))
    build = _cnilab("lab", "up", "--cni", "kube-router", "--mode", "bgp",
                    env={"HOME": str(home)})
    try:
        _wait_for(lambda: any("ansible-playbook" in _command(pid) for pid in _lab_builders()),
                  60, "the playbook")
        time.sleep(0.5)
        build.send_signal(signal.SIGTERM)
        _, err = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
    assert build.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    assert not _lab_builders() and not _processes("gobgpd")
    assert not any(core.leftovers(None).values())
    assert not list(home.glob(".ansible/tmp/*"))
    # nor the killed module's unpacked payload
    assert set(Path("/tmp").glob(LAB_PAYLOADS)) <= payloads


def test_ctrl_c_on_a_terminal_takes_the_bar_down_before_the_message(
        clean_lab: None, tmp_path: Path) -> None:
    """On a terminal the run draws a live bar; Ctrl-C (SIGINT to the foreground process
    group, as a terminal sends it) ends the run cleanly, and the bar stops before the
    interruption is reported: nothing is drawn after or over the message."""
    import pty
    import re

    spec = tmp_path / "owner.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "runs"
    leader, follower = pty.openpty()
    exe = Path(sys.executable).with_name("cnilab")
    run = subprocess.Popen([str(exe), "run", str(spec), "--lab", "netns", "--out", str(out)],
                           stdin=follower, stdout=follower, stderr=follower,
                           start_new_session=True, env={**os.environ, "TERM": "xterm",
                                                        "COLUMNS": "120"})
    os.close(follower)
    seen = bytearray()

    def read_some() -> None:
        import select

        while select.select([leader], [], [], 0.05)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)
    try:
        def measured_twice() -> bool:
            read_some()
            return _records(out) >= 2
        _wait_for(measured_twice, 120, "two measurements")
        os.killpg(run.pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while run.poll() is None and time.monotonic() < deadline:
            read_some()
        read_some()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        os.close(leader)
    assert run.returncode == 128 + signal.SIGINT
    text = seen.decode("utf-8", "replace")
    assert "\x1b[" in text and "━" in text                # a live bar was drawn
    message = "cnilab: interrupted (SIGINT)"
    assert message in text
    after = text[text.rindex(message) + len(message):]
    assert not re.sub(r"\x1b\[\?25h|\r|\n", "", after), repr(after)   # at most: cursor back
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "state.json").read_text())["status"] == "interrupted"
    assert not any(core.leftovers(None).values())
    assert not _processes("iperf3")
