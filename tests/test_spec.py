"""Spec validation: every bad input gives one FILE:LINE: message and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnilab.errors import SpecError
from cnilab.spec import expand_params, load_spec, load_spec_text

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
name: t
matrix:
  - cni: flannel
    mode: vxlan
placements: [intra-host, inter-host, underlay]
tests:
  - suite: iperf3-tcp
    params:
      duration_s: 2
      streams: [1, 4]
repetitions: 2
"""


def test_good_spec_expands_matrix() -> None:
    spec = load_spec_text(GOOD, "good.yaml")
    cells = spec.cells()
    assert len(cells) == 2 * 3  # streams 1 and 4, three placements
    assert {c.params_dict()["streams"] for c in cells} == {1, 4}
    assert cells[0].cell_id == "flannel/vxlan/intra-host/iperf3-tcp/duration_s=2,streams=1"
    assert len(spec.sha256) == 64


def test_shipped_experiments_validate() -> None:
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        assert load_spec(path).cells(), path


def test_expand_params_cross_product() -> None:
    combos = expand_params({"a": [1, 2], "b": "x", "c": [True, False]})
    assert len(combos) == 4
    assert (("a", 2), ("b", "x"), ("c", False)) in combos


BAD = [
    # (replace this, with that, expected line, expected words in message)
    ("repetitions: 2", "repetitions: -1", 11, "'repetitions' must be an integer from 1"),
    ("repetitions: 2", "repetitions: two", 11, "must be an integer"),
    ("    mode: vxlan", "    mode: gre", 4, "'matrix[0].mode' must be one of host-gw, vxlan"),
    ("  - cni: flannel", "  - cni: ovn", 3, "'matrix[0].cni' must be one of calico, cilium"),
    ("name: t", "name: t\nlabs: 3", 2, "unknown key 'labs' in spec (allowed:"),
    ("      duration_s: 2", "      duration_s: 0", 9,
     "tests[0].params.duration_s must be an integer from 1 to 3600"),
    ("      duration_s: 2", "      durration_s: 2", 9,
     "unknown key 'durration_s' in tests[0].params"),
    ("      streams: [1, 4]", "      streams: []", 10, "empty list"),
    ("placements: [intra-host, inter-host, underlay]", "placements: [intra-host, moon]", 5,
     "'placements[1]' must be one of intra-host, inter-host, service, host-network, underlay"),
    ("  - suite: iperf3-tcp", "  - suite: iperf9", 7, "'tests[0].suite' must be one of"),
    ("    params:\n      duration_s: 2\n      streams: [1, 4]", "    params: 5", 8,
     "'tests[0].params' must be a mapping"),
    ("name: t", "name: T t", 1, "'name' must be lowercase"),
    ("placements: [intra-host, inter-host, underlay]", "placements: [intra-host, inter-host", 6,
     "malformed YAML"),  # the parser notices the missing ']' on the next line
    ("name: t\n", "name: t\nname: u\n", 2, "duplicate key 'name'"),
    ("repetitions: 2", "repetitions: 2\nwarmup: 11", 12,
     "'warmup' must be an integer from 0 to 10"),
    ("repetitions: 2", "repetitions: 2\ncpu_pinning: always", 12,
     "'cpu_pinning' must be one of auto, off"),
]


@pytest.mark.parametrize(("old", "new", "line", "words"), BAD)
def test_bad_spec_points_at_line(old: str, new: str, line: int, words: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "bad.yaml")
    assert info.value.line == line, str(info.value)
    assert words in info.value.message, str(info.value)
    assert str(info.value).startswith(f"bad.yaml:{line}: ")


def test_missing_required_key() -> None:
    with pytest.raises(SpecError, match="missing required key 'repetitions'"):
        load_spec_text(GOOD.replace("repetitions: 2\n", ""), "x.yaml")


def test_not_a_mapping() -> None:
    with pytest.raises(SpecError, match=r"x.yaml:1: a spec must be a YAML mapping"):
        load_spec_text("- a\n- b\n", "x.yaml")


@pytest.mark.parametrize(("old", "new", "line", "words"), BAD[:5])
def test_cli_validate_exit_2_one_line(cli, tmp_path: Path, old: str, new: str, line: int,  # type: ignore[no-untyped-def]
                                      words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(old, new, 1), encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = cli("validate", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{path}:{line}: ")
    assert words in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_cli_run_bad_spec_writes_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("repetitions: 2", "repetitions: 0"), encoding="utf-8")
    out = tmp_path / "runs"
    proc = cli("run", str(path), "--lab", "netns", "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"{path}:11: ")
    assert not out.exists()


def test_cli_validate_missing_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = cli("validate", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert "nope.yaml: cannot read" in proc.stderr


@pytest.mark.parametrize(("text", "expected"), [("", "auto"), ("cpu_pinning: auto\n", "auto"),
                                               ("cpu_pinning: off\n", "off"),
                                               ("cpu_pinning: 'off'\n", "off")])
def test_cpu_pinning_values(text: str, expected: str) -> None:
    assert load_spec_text(GOOD + text, "p.yaml").cpu_pinning == expected


def test_plan_puts_warmups_first_then_interleaves() -> None:
    from cnilab.bench.engine import plan_measurements

    spec = load_spec_text(GOOD + "warmup: 1\n", "w.yaml")
    plan = plan_measurements(spec)
    cells = len(spec.cells())
    assert len(plan) == cells * (1 + 2)
    assert all(m.warmup and m.key.endswith("#w1") for m in plan[:cells])
    assert [m.repetition for m in plan[cells:]] == [1] * cells + [2] * cells
    assert len({m.key for m in plan}) == len(plan)
