"""Crafted specs and files get one line and exit 2: never a traceback, a hang or a
message that formats an unbounded value."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cnilab.errors import CnilabError
from cnilab.spec import VARIANTS, parse_spec
from cnilab.yamlpos import load_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = [ROOT / "experiments" / "lanman2020.yaml", ROOT / "experiments" / "quickstart.yaml",
         ROOT / "tests" / "data" / "specs" / "study-mini.yaml"]

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi",
                                                                strict=True))


def _one_line_exit_2(proc: Any) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
        proc.stderr
    return str(proc.stderr.strip())


@pytest.mark.parametrize(("name", "text", "words"), [
    ("laughs.yaml", BILLION_LAUGHS + "name: x\ndescription: *i\n",
     "expands to more than 100000 values"),
    ("laughs-matrix.yaml", BILLION_LAUGHS + "matrix: *i\n", "expands to more than"),
    ("deep.yaml", "name: x\nmatrix: " + "[" * 5000 + "]" * 5000 + "\n",
     "nested more than 64 levels deep"),
    ("nested-quick.yaml", "name: x\nmatrix: [{cni: flannel, mode: vxlan}]\nplacements: "
     "[intra-host]\ntests: [{suite: iperf3-tcp}]\nrepetitions: 1\n"
     "quick: {matrix: [[flannel/vxlan]]}\n",
     "quick.matrix[0]"),
    ("big.yaml", "name: x\ndescription: " + "y" * (2 * 1024 * 1024) + "\n",
     "more than the 1048576 a cnilab file may have"),
])
def test_crafted_specs_get_one_line_quickly(cli: Any, tmp_path: Path, name: str, text: str,
                                            words: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    started = time.monotonic()
    line = _one_line_exit_2(cli("validate", str(path), timeout=60))
    assert time.monotonic() - started < 20
    assert line.startswith(str(path)) and words in line, line
    assert len(line) < 600                      # no value formatted at length


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, (*path, index))
    if path:
        yield path


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_every_field_of_a_real_spec_refuses_values_of_another_shape(spec: Path) -> None:
    """Every value of the project's own specs replaced, one at a time, by a nested list, a
    null or a huge float: each variant parses or is refused as bad input, never
    with another exception (a variant's value is tried with that variant applied). The
    values are replaced in the parsed document, line numbers kept, so the file is
    parsed once rather than once per case."""
    text = spec.read_text()
    data = load_text(text, spec.name)
    crashes = []
    refused = 0
    for path in _leaves(data):
        for value in ([[1]], None, 1e999):
            variant = copy.deepcopy(data)
            holder = variant
            for step in path[:-1]:
                holder = holder[step]
            holder[path[-1]] = value
            try:
                parse_spec(variant, spec.name, text, path[0] if path[0] in VARIANTS else "")
            except CnilabError:
                refused += 1
            except Exception as exc:
                crashes.append(f"{path} = {value!r}: {type(exc).__name__}: {exc}")
    assert crashes == []
    assert refused > len(list(_leaves(data)))    # most replacements are refused


DATA = ROOT / "tests" / "data"


def _cut_after(text: str, key: str, keep: int) -> str:
    """``text`` cut ``keep`` characters into the value of ``key`` (a kill mid-write)."""
    start = text.index(f"{key}=") + len(key) + 1
    return text[:start + keep]


def test_netperf_output_that_is_not_a_number_is_refused_naming_the_field() -> None:
    from cnilab.bench.parsers import ParseError, netperf

    real = (DATA / "netperf" / "tcp_rr.txt").read_text()
    assert netperf.parse(real)["latency_p99_us"] > 0
    p99 = real.split("P99_LATENCY=")[1].splitlines()[0]
    cases = {
        _cut_after(real, "P99_LATENCY", 1): "ends mid-line",                  # 19 -> 1
        real.replace("P99_LATENCY=", "P99_LATEN", 1): "but not P99_LATENCY",  # key cut
        real.replace(f"P99_LATENCY={p99}", "P99_LATENCY=nan"): "P99_LATENCY is not a finite",
        real.replace(f"P99_LATENCY={p99}", "P99_LATENCY=1e999"): "not a finite number",
        real.replace(f"P99_LATENCY={p99}", "P99_LATENCY=-3"): "P99_LATENCY is negative",
        real.replace(f"P99_LATENCY={p99}", "P99_LATENCY=12abc"): "P99_LATENCY is not a number",
    }
    throughput = real.split("THROUGHPUT=")[1].splitlines()[0]
    cases[real.replace(f"THROUGHPUT={throughput}", "THROUGHPUT=inf", 1)] = "THROUGHPUT is not"
    cases[real.replace(f"THROUGHPUT={throughput}", "THROUGHPUT=-5", 1)] = "THROUGHPUT is neg"
    for text, words in cases.items():
        with pytest.raises(ParseError, match=words):
            netperf.parse(text)


def test_iperf3_json_that_is_not_a_number_is_refused_naming_the_field() -> None:
    import json

    from cnilab.bench.parsers import ParseError, iperf3

    real = json.loads((DATA / "iperf3" / "tcp-1stream.json").read_text())
    assert iperf3.parse(json.dumps(real))["throughput_gbps"] > 0

    def variant(value: Any) -> str:
        data = copy.deepcopy(real)
        data["end"]["sum_received"]["bits_per_second"] = value
        return json.dumps(data)

    for text, words in (
            (variant("9.4e9"), "end.sum_received.bits_per_second is not a number: '9.4e9'"),
            (variant(-1), "end.sum_received.bits_per_second is negative"),
            (variant(True), "is not a number"),
            (variant(1).replace('"bits_per_second": 1,', '"bits_per_second": 1e999,', 1),
             "is not a finite number"),
            (variant(1).replace('"bits_per_second": 1,', '"bits_per_second": NaN,', 1),
             "NaN is not a JSON number"),
            ('{"start": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deep"),
            ('{"start": {}, "end": {"sum_received": 5, "sum_sent": 5}}', "is not an object")):
        with pytest.raises(ParseError, match=words):
            iperf3.parse(text)


def test_lab_commands_refuse_what_they_cannot_do_in_one_line(cli: Any, monkeypatch: Any,
                                                             capsys: Any) -> None:
    from cnilab import cli as cnilab_cli
    from cnilab.network import PODS_PER_HOST_RANGE

    monkeypatch.setattr("os.geteuid", lambda: 1000)          # an unprivileged user
    for action in ("up", "down"):
        extra = ["--cni", "flannel", "--mode", "vxlan"] if action == "up" else []
        assert cnilab_cli.main(["lab", action, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"cnilab: cnilab lab {action} needs root (network namespaces); run it " \
            "with sudo"
    monkeypatch.undo()
    low, high = PODS_PER_HOST_RANGE                           # what specs accept
    for pods in (low - 1, high + 1):
        proc = cli("lab", "up", "--cni", "flannel", "--mode", "vxlan", "--pods-per-host",
                   str(pods))
        assert _one_line_exit_2(proc).endswith(
            f"--pods-per-host must be from {low} to {high}, got {pods}")


def test_lab_status_json_is_json_when_nothing_is_up(cli: Any, tmp_path: Path) -> None:
    import json

    proc = cli("lab", "status", "--json", env={"CNILAB_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"up": False}
