"""Crafted specs and files get one line and exit 2: never a traceback, a hang or a
message that formats an unbounded value."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnilab.errors import CnilabError
from cnilab.spec import load_spec_text

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
    with another exception (the quick variant is applied where the value is in it)."""
    data = yaml.safe_load(spec.read_text())
    crashes = []
    for path in _leaves(data):
        for value in ([[1]], None, 1e999):
            variant = copy.deepcopy(data)
            holder = variant
            for step in path[:-1]:
                holder = holder[step]
            holder[path[-1]] = value
            text = yaml.safe_dump(variant)
            try:
                load_spec_text(text, spec.name, path[0] == "quick")
            except CnilabError:
                pass
            except Exception as exc:
                crashes.append(f"{path} = {value!r}: {type(exc).__name__}: {exc}")
    assert crashes == []
