"""The Ansible engine with real ansible-runner and ansible-playbook."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

import pytest

from cnilab.ansible_engine import (
    Interrupted,
    PlaybookFailed,
    Progress,
    _Interrupt,
    run_playbook,
)

PLAYBOOKS = Path(__file__).resolve().parent / "data" / "playbooks"


def test_failure_is_one_block_with_task_file_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    with pytest.raises(PlaybookFailed) as info:
        run_playbook(str(PLAYBOOKS / "fails.yml"), private_data_dir=tmp_path,
                     progress=Progress(stream))
    result = info.value.result
    assert result.status == "failed" and result.rc != 0
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert failure.task == "Test | Fail with output"
    assert failure.task_path.endswith("fails.yml:11")
    assert failure.rc == 3
    assert "to-stderr" in failure.stderr and "to-stdout" in failure.stdout
    text = str(info.value)
    assert text.startswith("FAILED: host localhost, task 'Test | Fail with output'")
    # plain progress lines when not a terminal
    assert "TASK Test | Succeed" in stream.getvalue()
    assert "Never reached" not in stream.getvalue()


def test_no_environment_dump_in_artifacts(tmp_path: Path) -> None:
    os.environ["CNILAB_TEST_SECRET"] = "s3cr3t-value"
    try:
        with pytest.raises(PlaybookFailed):
            run_playbook(str(PLAYBOOKS / "fails.yml"), private_data_dir=tmp_path,
                         progress=Progress(io.StringIO()))
    finally:
        del os.environ["CNILAB_TEST_SECRET"]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert "s3cr3t-value" not in path.read_text(errors="replace"), path
    command = next(tmp_path.rglob("command"))
    assert "env" not in json.loads(command.read_text())
    assert not (tmp_path / "env" / "envvars").exists()


def test_cancel_leaves_consistent_state(tmp_path: Path) -> None:
    # Simulate Ctrl-C: the interrupt flag the SIGINT handler sets.
    original_enter = _Interrupt.__enter__

    def enter(self: _Interrupt) -> _Interrupt:
        original_enter(self)
        threading.Timer(2.0, lambda: setattr(self, "requested", True)).start()
        return self

    _Interrupt.__enter__ = enter  # type: ignore[method-assign]
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            run_playbook(str(PLAYBOOKS / "slow.yml"), private_data_dir=tmp_path,
                         progress=Progress(io.StringIO()))
    finally:
        _Interrupt.__enter__ = original_enter  # type: ignore[method-assign]
    assert time.monotonic() - started < 20  # cancelled, not waited out (sleep 30)
    status = next(tmp_path.rglob("status")).read_text()
    assert status == "canceled"
