"""The README's methods table states each preset's input size (the quick PatchCore's 160 px was only in --show)."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import miad.methods
from miad.registry import get_method

README = Path(__file__).resolve().parents[2] / "README.md"
SHIPPED = sorted(m.name for m in pkgutil.iter_modules(miad.methods.__path__) if m.ispkg)  # not the test doubles


def _row(method: str) -> list[str]:
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| `{method}` |"):
            return [c.strip() for c in line.strip().strip("|").split("|")]
    raise AssertionError(f"README.md's methods table has no row for `{method}`; add one")


@pytest.mark.parametrize("method", SHIPPED)
def test_methods_table_states_each_presets_image_size(method: str) -> None:
    cells = _row(method)
    paper = next(c for c in cells if c.startswith("A.2."))  # the appendix column
    quick = cells[-1]
    presets = get_method(method).PRESETS
    assert f"{presets['paper'].image_size} px" in paper, f"README.md: {method}'s paper cell lacks its input size"
    assert f"{presets['quick'].image_size} px" in quick, f"README.md: {method}'s quick cell lacks its input size"
