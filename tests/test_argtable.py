"""The README's command reference is the parsers' own: regenerated here, it must equal what README.md holds."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from miad import argtable
from miad.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_command_reference_matches_the_parsers() -> None:
    text = README.read_text(encoding="utf-8")
    expected = argtable.replace_block(text, argtable.argument_reference(build_parser()))
    assert text == expected, (f"README.md's command reference differs from the argument parsers; run "
                              f"`{argtable.REGENERATE}` in the repository root and commit README.md")


def _walk(parser: argparse.ArgumentParser, name: str):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _walk(sub, f"{name} {sub_name}")


def test_every_command_and_flag_has_a_row() -> None:
    """Independent of the generator's own walk: each leaf command gets a heading and each option a row."""
    parser = build_parser()
    table = argtable.argument_reference(parser)
    sections = {s.split("`", 2)[1]: s for s in table.split("### ")[1:]}
    for name, sub in _walk(parser, "miad"):
        options = [o for a in sub._actions for o in a.option_strings if o not in ("-h", "--help")]
        if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            assert name in sections, f"no section for `{name}`"
        for option in options:
            assert f"| `{option}" in sections[name] or f"/{option}" in sections[name], f"{name} {option}"
    for expected in ("miad data check", "miad export", "miad benchmark"):
        assert expected in sections
    assert "`--format onnx\\|openvino`" in sections["miad export"]  # choices shown, pipes escaped for Markdown


def test_new_subcommands_and_nested_ones_appear_without_editing_the_generator() -> None:
    parser = argparse.ArgumentParser(prog="miad")
    sub = parser.add_subparsers()
    cache = sub.add_parser("cache", help="manage the cache")
    actions = cache.add_subparsers()
    clear = actions.add_parser("clear", help="delete cached data")
    clear.add_argument("--yes", action="store_true", help="do not ask | confirm")
    clear.add_argument("--keep", action="append", default=None, metavar="NAME", help="keep NAME (%(default)s)")
    table = argtable.argument_reference(parser)
    assert "### `miad cache clear`\n\nDelete cached data." in table
    assert "| `--yes` | `off` | do not ask \\| confirm |" in table
    assert "| `--keep NAME` |  | keep NAME (None) (repeatable) |" in table
    assert "### `miad cache`" not in table  # a grouping command without arguments of its own


def test_a_readme_without_the_markers_is_refused_with_the_fix() -> None:
    with pytest.raises(SystemExit, match="lacks the marker lines"):
        argtable.replace_block("# no markers\n", "table")
