"""The command line's conventions (cnilab/cli_parser.py), checked over every subcommand
so that a new one cannot break them: one meaning per option name, actions as
subcommands with their own help, valid values listed, one-line usage errors."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest

from cnilab.cli_parser import build_parser
from cnilab.modes import catalog


def _commands(parser: argparse.ArgumentParser,
              path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                            argparse.ArgumentParser]]:
    """Every (sub)command that takes options: (words after `cnilab`, its parser)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _commands(child, (*path, name))


COMMANDS = dict(_commands(build_parser()))


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_out_is_always_a_directory_and_a_file_is_output() -> None:
    for words, parser in COMMANDS.items():
        out, output = _option(parser, "--out"), _option(parser, "--output")
        if out is not None:
            assert out.metavar == "DIR" and "directory" in (out.help or ""), words
        if output is not None:
            assert output.metavar == "FILE", words
    assert _option(COMMANDS[("bundle",)], "--output") is not None
    assert _option(COMMANDS[("inventory", "cloudlab")], "--output") is not None
    for words in (("run",), ("reproduce",), ("cluster", "up"), ("deploy",), ("switch",)):
        assert _option(COMMANDS[words], "--out") is not None, words


def test_actions_are_subcommands_with_only_their_own_options() -> None:
    assert {w for w in COMMANDS if w[0] == "lab"} == {("lab", "up"), ("lab", "down"),
                                                       ("lab", "status")}
    assert {w for w in COMMANDS if w[0] == "cluster"} == {
        ("cluster", "up"), ("cluster", "reset"), ("cluster", "collect")}
    assert {w[1] for w in COMMANDS if w[0] == "inventory"} == {"vagrant", "cloudlab",
                                                                "chameleon", "check"}
    assert _option(COMMANDS[("lab", "up")], "--all") is None
    assert _option(COMMANDS[("lab", "status")], "--cni") is None
    assert _option(COMMANDS[("lab", "down")], "--json") is None
    assert _option(COMMANDS[("cluster", "reset")], "--reboot") is not None
    assert _option(COMMANDS[("cluster", "up")], "--reboot") is None
    # preflight runs before `cluster up` and `switch` only; deploy has none to skip
    for words, has in ((("cluster", "up"), True), (("switch",), True), (("deploy",), False),
                       (("cluster", "reset"), False)):
        assert (_option(COMMANDS[words], "--skip-preflight") is not None) is has, words


def test_help_texts_name_no_other_action() -> None:
    """A help text copied from another subcommand says which actions it applies to."""
    actions = ("(up", "(down", "(up,", "(switch", "up;", "down/status")
    for words, parser in COMMANDS.items():
        for action in parser._actions:
            assert not any(a in (action.help or "") for a in actions), (words, action.help)


def test_cni_and_mode_list_their_values_from_the_catalog() -> None:
    table = catalog()
    for words, parser in COMMANDS.items():
        cni = _option(parser, "--cni")
        if cni is None:
            continue
        assert list(cni.choices or []) == list(table), words
        mode_help = _option(parser, "--mode").help or ""   # type: ignore[union-attr]
        wanted = ([m for m, mode in table["flannel"].items() if mode.lab_implemented]
                  if words[0] == "lab" else list(table["calico"]))
        for cni_name in table:
            assert f"{cni_name}: " in mode_help, (words, cni_name)
        assert all(m in mode_help for m in wanted), (words, mode_help)
    assert "ipip" in (_option(COMMANDS[("deploy",)], "--mode").help or "")   # type: ignore[union-attr]


def test_run_and_reproduce_take_repetitions_and_duration() -> None:
    for words in (("run",), ("reproduce",)):
        args = build_parser().parse_args([*words, "x", "--repetitions", "2", "--duration",
                                          "3"])
        assert (args.repetitions, args.duration) == (2, 3)


@pytest.mark.parametrize(("argv", "expected"), [
    (["bundle", "r", "--out", "x"], "cnilab bundle: unrecognized arguments: --out x; did you "
     "mean --out -> --output? (see `cnilab bundle --help`)"),
    (["lab", "status", "--cni", "flannel"], "cnilab lab status: unrecognized arguments: "
     "--cni flannel (see `cnilab lab status --help`)"),
    (["lab", "up", "--cni", "flannel"], "cnilab lab up: the following arguments are "
     "required: --mode (see `cnilab lab up --help`)"),
    (["run", "s", "--dur", "3"], "cnilab run: unrecognized arguments: --dur 3; did you mean "
     "--dur -> --duration? (see `cnilab run --help`)"),
])
def test_usage_errors_are_one_line_naming_the_subcommand(
        argv: list[str], expected: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err == expected + "\n"
