"""The command line builds only the typed command's parser: the same parser as the whole
one builds for that command, and a start-up that imports no other command's module."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from corebpf.cli import COMMANDS, build_parser, main
from tests.conftest import PROGS

WORDS = sorted({w for words, _, _ in COMMANDS for w in words})


def _subparser(parser: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[word]  # type: ignore[no-any-return]
    raise AssertionError("no subcommands")


def _helps(parser: argparse.ArgumentParser) -> list[str]:
    """The help of a parser and of every subparser under it, depth first."""
    out = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _helps(sub)
    return out


def test_the_table_names_every_command() -> None:
    full = build_parser()
    for action in full._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert sorted(action.choices) == WORDS


@pytest.mark.parametrize("word", WORDS)
def test_one_command_parses_as_in_the_whole_parser(word: str, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    alone = _subparser(build_parser(word), word)
    whole = _subparser(build_parser(), word)
    assert _helps(alone) == _helps(whole)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in WORDS:
        assert f"\n    {word} " in out or f"\n    {word}\n" in out, word


def test_unknown_command_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["nosuchcommand"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuchcommand'" in err
    for word in WORDS:
        assert repr(word) in err


def test_core_relocate_imports_no_other_command() -> None:
    code = ("import sys\nfrom corebpf.cli import main\n"
            f"rc = main(['core', 'relocate', {str(PROGS / 'core_kinds.bpf.o')!r}, '--json'])\n"
            "print(rc, sorted(m for m in sys.modules if m.startswith('corebpf.cli.')), "
            "'corebpf.service' in sys.modules, 'typing' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1]
    assert out == "0 ['corebpf.cli.core'] False False"
