"""Spec validation: every bad input gives one FILE:LINE: message and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnilab.errors import InputError, SpecError
from cnilab.spec import expand_params, load_spec, load_spec_text, spec_of_record, with_overrides

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
    ("    mode: vxlan", "    mode: vxlan\n    offload: sometimes", 5,
     "'matrix[0].offload' must be on or off, got 'sometimes'"),
    ("    mode: vxlan", "    mode: host-gw\n    offload: off", 5,
     "'matrix[0].offload': flannel/host-gw sends no UDP tunnel packets"),
]


def test_offload_off_is_its_own_matrix_entry() -> None:
    text = GOOD.replace("    mode: vxlan\n", "    mode: vxlan\n  - cni: flannel\n"
                        "    mode: vxlan\n    offload: off\n")
    spec = load_spec_text(text, "offload.yaml")
    assert [ref.key for ref in spec.matrix] == ["flannel/vxlan", "flannel/vxlan+offload-off"]
    off = [c for c in spec.cells() if not c.offload]
    assert off and off[0].cell_id.startswith("flannel/vxlan+offload-off/")
    assert off[0].as_record()["offload"] is False


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


SWEEP = """\
name: s
lab: {pods_per_host: 4}
matrix:
  - cni: calico
    mode: vxlan
placements: [intra-host, inter-host]
tests:
  - suite: netperf-tcp-rr
    sweep:
      policy_rules: [0, 1000]
      rule_shape: [rules, ipset]
  - suite: iperf3-tcp
    sweep:
      background_flows: [0, 50]
  - suite: pod-startup
    params: {pods: [1, 4]}
repetitions: 2
"""


def test_sweeps_expand_into_cells_and_zero_conditions_collapse() -> None:
    cells = load_spec_text(SWEEP, "s.yaml").cells()
    ids = [c.cell_id for c in cells]
    assert len(ids) == len(set(ids))
    rr = [c for c in cells if c.suite == "netperf-tcp-rr"]
    # 0 rules of either shape is one baseline cell (the unconditioned one);
    # 1000 rules x 2 shapes; x 2 placements
    assert len(rr) == (1 + 2) * 2
    assert {dict(c.condition).get("rule_shape") for c in rr} == {None, "rules", "ipset"}
    bg = [dict(c.condition) for c in cells if c.suite == "iperf3-tcp"]
    assert {"background_flows": 50, "background_rate_mbps": 10} in bg
    assert {} in bg and len(bg) == 2 * 2
    startup = [c for c in cells if c.suite == "pod-startup"]
    assert [c.placement for c in startup] == ["node", "node"]  # no traffic placement
    assert "calico/vxlan/intra-host/netperf-tcp-rr//policy_rules=1000,rule_shape=ipset" in ids


BAD_SWEEPS = [
    ("      rule_shape: [rules, ipset]", "      rule_shape: [rules, bitmap]", 11,
     "tests[0].sweep.rule_shape must be one of rules, chains, ipset, got 'bitmap'"),
    ("      policy_rules: [0, 1000]\n", "", 10,
     "tests[0].sweep.rule_shape needs policy_rules in the same sweep"),
    ("      background_flows: [0, 50]", "      background_flows: [0, 5000]", 14,
     "tests[1].sweep.background_flows must be an integer from 0 to 2000"),
    ("      background_flows: [0, 50]", "      backgroud_flows: [0, 50]", 14,
     "unknown key 'backgroud_flows' in tests[1].sweep"),
    ("lab: {pods_per_host: 4}", "lab: {pods_per_host: 2}", 14,
     "background_flows at intra-host needs lab.pods_per_host >= 4"),
    ("    params: {pods: [1, 4]}", "    params: {pods: 1}\n    sweep: {policy_rules: 5}", 17,
     "tests[2].sweep: pod-startup takes no sweep"),
    ("    params: {pods: [1, 4]}", "    params: {pods: 64}", 16,
     "tests[2].params.pods must be an integer from 1 to 32"),
    ("repetitions: 2", "repetitions: {min: 3, max: 2, ci_target: 0.05}", 17,
     "'repetitions.max' must be an integer from 3"),
    ("repetitions: 2", "repetitions: {min: 3, max: 9, ci_target: 5}", 17,
     "'repetitions.ci_target' must be a fraction of the mean between 0 and 1"),
    ("repetitions: 2", "repetitions: {min: 3, max: 9}", 17,
     "'repetitions' is missing required key 'ci_target'"),
    ("repetitions: 2", "repetitions: 2\ninterleave: random", 18,
     "'interleave' must be one of within-mode, across-modes"),
]


@pytest.mark.parametrize(("old", "new", "line", "words"), BAD_SWEEPS)
def test_bad_sweeps_and_repetitions_name_the_line(old: str, new: str, line: int,
                                                   words: str) -> None:
    text = SWEEP.replace(old, new)
    assert text != SWEEP
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml")
    assert str(info.value).startswith(f"s.yaml:{line}: "), str(info.value)
    assert words in str(info.value)


def test_adaptive_repetitions_parsed() -> None:
    spec = load_spec_text(SWEEP.replace("repetitions: 2",
                                        "repetitions: {min: 3, max: 12, ci_target: 0.05}"),
                          "a.yaml")
    assert spec.adaptive and spec.repetitions == 3 and spec.repetition_cap == 12
    assert spec.ci_target == 0.05
    fixed = load_spec_text(SWEEP, "f.yaml")
    assert not fixed.adaptive and fixed.repetition_cap == 2


def test_a_records_mode_key_reads_offload_with_older_records_on() -> None:
    from cnilab.modes import record_mode_key

    assert record_mode_key({"cni": "flannel", "mode": "vxlan"}) == "flannel/vxlan"
    assert record_mode_key({"cni": "flannel", "mode": "vxlan", "offload": False}) == \
        "flannel/vxlan+offload-off"
    assert record_mode_key({"cni": "calico", "mode": "bgp", "policy": True,
                            "offload": True}) == "calico/bgp+policy"


def test_a_variant_keeps_a_subset_of_the_placements() -> None:
    text = GOOD + "quick:\n  placements: [inter-host]\n"
    quick = load_spec_text(text, "v.yaml", "quick")
    assert quick.placements == ("inter-host",)
    assert {c.placement for c in quick.cells()} == {"inter-host"}
    with pytest.raises(SpecError) as err:
        load_spec_text(GOOD + "quick:\n  placements: [service]\n", "v.yaml", "quick")
    assert ":13: quick.placements[0]: 'service' is not a placement of the spec" in str(err.value)


def test_overrides_set_repetitions_and_every_timed_test_duration() -> None:
    study = load_spec(ROOT / "experiments" / "lanman2020.yaml", "standard")
    assert study.sequential
    more = with_overrides(study, {"repetitions": 5, "duration_s": None})
    assert more.repetitions == 5 and more.repetition_cap == max(study.repetition_cap, 5)
    assert more.sequential and more.overrides == (("repetitions", 5),)
    one = with_overrides(study, {"repetitions": 1})
    assert one.repetitions == 1 and not one.adaptive     # one repetition: nothing to judge
    short = with_overrides(study, {"duration_s": 7})
    from cnilab.bench.suites import SUITES

    timed = [t for t in short.tests if "duration_s" in SUITES[t.suite].params]
    assert timed and all(t.params["duration_s"] == 7 for t in timed)
    assert all("duration_s" not in t.params for t in short.tests if t not in timed)
    assert short.sha256 == study.sha256                 # the file is the same file
    with pytest.raises(InputError, match=r"^--duration 0: must be an integer from 1 to 3600$"):
        with_overrides(study, {"duration_s": 0})
    with pytest.raises(InputError, match=r"^--repetitions 1001: "):
        with_overrides(study, {"repetitions": 1001})


def test_spec_of_record_applies_the_recorded_variant_and_overrides() -> None:
    path = ROOT / "experiments" / "lanman2020.yaml"
    text = path.read_text(encoding="utf-8")
    record = {"text": text, "path": str(path), "variant": "quick",
              "overrides": {"repetitions": 4, "duration_s": 2}}
    spec = spec_of_record(record)
    assert spec.variant == "quick" and spec.repetitions == 4
    assert dict(spec.overrides) == {"repetitions": 4, "duration_s": 2}
    plain = spec_of_record({**record, "overrides": {}})
    assert plain.repetitions == load_spec(path, "quick").repetitions
