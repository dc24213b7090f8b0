"""Every `paper` value has a source (appendix section, pinned original file, or miad's own choice with why), the
CLI prints them, and README.md carries the generated table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from miad.cli import main
from miad.sources import builtin_methods, markdown_tables, source_problems, source_rows

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- paper-sources:begin", "<!-- paper-sources:end -->"


def test_the_six_methods_are_documented() -> None:
    assert builtin_methods() == ["draem", "fastflow", "patchcore", "reverse_distillation", "unet_ae", "uniad"]


@pytest.mark.parametrize("method", builtin_methods())
def test_every_paper_field_has_a_well_formed_source(method: str) -> None:
    assert source_problems(method) == []
    assert all(not re.search(r"methods\.md|project notes|/work/", s) for _, _, s in source_rows(method))


def test_a_missing_or_unpinned_source_is_reported(monkeypatch) -> None:
    import miad.methods.fastflow.model as ff

    broken = dict(ff.PAPER_SOURCES)
    del broken["lr"]
    broken["clamp"] = "see the notes"
    broken["flow_steps"] = "someone/fork @ main fastflow.py: 8"
    monkeypatch.setattr(ff, "PAPER_SOURCES", broken)
    problems = "\n".join(source_problems("fastflow"))
    assert "fastflow.lr: no source" in problems
    assert "fastflow.clamp: 'see the notes' starts with neither" in problems
    assert "'someone/fork @ main' is not one of the pinned originals" in problems


def test_cli_prints_each_paper_value_with_its_source(capsys) -> None:
    assert main(["methods", "--show", "reverse_distillation", "--sources"]) == 0
    out = capsys.readouterr().out
    assert "  lr = 0.005\n      MIAD A.2.1: learning rate 0.005\n" in out
    assert "  map_mode = \"multiply\"\n      openvinotoolkit/anomalib @ v0.3.7 " in out
    assert len(re.findall(r"^  \w+ = ", out, re.M)) == len(source_rows("reverse_distillation"))


def test_readme_table_is_the_generated_one(capsys) -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n", text.index(BEGIN)) + 1
    in_readme = text[start:text.index(END)]
    assert main(["methods", "--sources", "--markdown"]) == 0
    generated = capsys.readouterr().out
    assert generated == markdown_tables(builtin_methods())
    assert in_readme == generated, (
        "README.md's paper-sources table is stale: replace the lines between its paper-sources markers by the "
        "output of `python -m miad methods --sources --markdown`"
    )
