"""Progress of long commands (cnilab/progress.py): the time left from measured durations,
plain lines without a terminal, a live rich bar on one that comes down before an error
block, and a playbook's time left from its last run."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from cnilab import progress as progress_module
from cnilab.ansible_engine import PlaybookFailed, Progress, run_playbook
from cnilab.progress import Display, PlaybookTimings, clock

PLAYBOOKS = Path(__file__).resolve().parent / "data" / "playbooks"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a real one would."""

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock_ = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock_)
    return clock_


def test_clock_text() -> None:
    assert clock(65) == "1:05" and clock(3725) == "1:02:05" and clock(-3) == "0:00"


def test_plain_lines_with_time_left_every_n_steps(fake_clock: Clock) -> None:
    stream = io.StringIO()
    display = Display(stream, every=10)
    display.start(40)
    for i in range(20):
        fake_clock.now += 3.0                  # every step took 3 s
        display.line(f"step {i}")
        display.advance(f"cell {i}")
    lines = stream.getvalue().splitlines()
    progress = [line for line in lines if line.startswith("progress:")]
    assert progress == ["progress: 10/40 (25 %), 0:30 elapsed, about 1:30 left",
                        "progress: 20/40 (50 %), 1:00 elapsed, about 1:00 left"]
    assert "\x1b" not in stream.getvalue()     # no terminal control in a log file


def test_time_left_after_a_resume_counts_only_this_command(fake_clock: Clock) -> None:
    display = Display(io.StringIO())
    display.start(30, done=20)                 # 20 measured by the interrupted run
    assert display.seconds_left() is None      # nothing measured yet: no guess
    for _ in range(5):
        fake_clock.now += 2.0
        display.advance("cell")
    assert display.seconds_left() == pytest.approx(2.0 * 5)
    fake_clock.now += 2.0
    display.advance("cell", total=40)          # adaptive: more rounds were planned
    assert display.seconds_left() == pytest.approx(2.0 * 14)


def test_terminal_bar_shows_done_total_current_and_time_left(fake_clock: Clock) -> None:
    stream = Terminal()
    with Display(stream) as display:
        display.start(8, what="measuring")
        for i in range(3):
            fake_clock.now += 4.0
            display.line(f"[{i + 1}/8] flannel/vxlan inter-host iperf3-tcp r{i + 1}: ok")
            display.advance(f"flannel/vxlan inter-host iperf3-tcp r{i + 1}")
    text = ANSI.sub("", stream.getvalue())
    assert "[3/8] flannel/vxlan inter-host iperf3-tcp r3: ok" in text
    final = text.rstrip().splitlines()[-1]
    assert "flannel/vxlan inter-host iperf3-tcp r3" in final and "3/8" in final
    assert "0:12 elapsed" in final and "0:20 left" in final     # 4 s a step, 5 steps left


def test_failed_playbook_error_block_is_not_drawn_over(tmp_path: Path) -> None:
    stream = Terminal()
    display = Display(stream)
    display.start(4, what="measuring")
    timings = PlaybookTimings(tmp_path / "timings.json")
    with pytest.raises(PlaybookFailed) as info:
        run_playbook(str(PLAYBOOKS / "fails.yml"), private_data_dir=tmp_path / "a",
                     progress=Progress(display=display, timings=timings))
    display.close()                            # what execute's finally does
    block = str(info.value)
    stream.write(block + "\n")                 # what main prints next
    out = stream.getvalue()
    assert out.endswith(block + "\n")          # nothing drawn after or into the block
    assert "\x1b" not in out[out.index(block):]
    assert not timings.last("fails.yml", "local")   # a failed run sets no expectation


def test_playbook_time_left_comes_from_its_last_run(tmp_path: Path) -> None:
    timings = PlaybookTimings(tmp_path / "timings.json")
    first = io.StringIO()
    run_playbook(str(PLAYBOOKS / "succeeds.yml"), private_data_dir=tmp_path / "a",
                 progress=Progress(first, timings=timings))
    assert "TASK Test | First  [task 1;" in first.getvalue()      # no guess the first time
    tasks, seconds = timings.last(str(PLAYBOOKS / "succeeds.yml"), "local") or (0, 0.0)
    assert tasks == 3 and seconds > 0
    second = io.StringIO()
    run_playbook(str(PLAYBOOKS / "succeeds.yml"), private_data_dir=tmp_path / "b",
                 progress=Progress(second, timings=timings))
    assert re.search(r"TASK Test \| Third  \[task 3 of ~3, ~\d+:\d\d left;",
                     second.getvalue()), second.getvalue()


def test_timings_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "t" / "timings.json"
    timings = PlaybookTimings(path)
    timings.remember("cluster.yml", "hosts.yml", 120, 300.0)
    timings.remember("cni.yml", "hosts.yml", 40, 90.0)
    assert timings.last("cluster.yml", "hosts.yml") == (120, 300.0)
    assert timings.last("cluster.yml", "other.yml") is None
    path.write_text("not json")
    assert timings.last("cni.yml", "hosts.yml") is None           # unreadable: no estimate
    assert [p.name for p in path.parent.iterdir()] == ["timings.json"]


def test_quiet_keeps_findings_and_drops_progress(fake_clock: Clock) -> None:
    stream = io.StringIO()
    display = Display(stream, quiet=True, every=1)
    display.start(3)
    fake_clock.now += 1.0
    display.line("[1/3] flannel/vxlan inter-host iperf3-tcp r1: ok", progress=True)
    display.advance("cell")
    display.line("skipping calico/ipip: the kernel has no ipip")
    assert stream.getvalue() == "skipping calico/ipip: the kernel has no ipip\n"

