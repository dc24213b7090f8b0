"""Tables from a fixed results file: golden Markdown and LaTeX, and cells checked by hand.

To accept an intended change of layout: MIAD_UPDATE_GOLDEN=1 pytest tests/bench/test_tables.py, then review
the diff of tests/bench/golden/ before committing it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from miad.bench import render
from miad.bench.aggregate import Cell
from miad.bench.results import read_results
from miad.bench.table_format import fmt_cell
from miad.bench.tables import build_tables, main_table

GOLDEN = Path(__file__).with_name("golden")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return read_results(GOLDEN / "results.jsonl")


@pytest.mark.parametrize(("name", "renderer"), [("tables.md", render.markdown), ("tables.tex", render.latex)])
def test_tables_match_golden(rows, name, renderer) -> None:
    text = renderer(build_tables(rows))
    if os.environ.get("MIAD_UPDATE_GOLDEN"):
        (GOLDEN / name).write_text(text, encoding="utf-8")
    assert text == (GOLDEN / name).read_text(encoding="utf-8")


def _values(rows, method, category, metric, unified=False) -> list[float]:
    return [r[metric] for r in sorted(rows, key=lambda r: r["seed"]) if r["scope"] == "category"
            and r["method"] == method and r["category"] == category and r["unified"] == unified]


def test_cells_are_mean_and_sample_std_over_seeds(rows) -> None:
    table = main_table(rows, "image_auroc")
    a, b = _values(rows, "alpha", "electrical_insulator", "image_auroc")
    mean, std = 100 * (a + b) / 2, 100 * abs(a - b) / math.sqrt(2)  # sample std of two values
    row = next(r for r in table.rows if r[0] == "alpha")
    assert row[table.header.index("electrical_insulator")] == f"{mean:.1f} ± {std:.1f}"
    per_seed = [sum(_values(rows, "alpha", c, "image_auroc")[s] for c in table.header[1:-1]) / 3 for s in (0, 1)]
    expected = Cell({0: per_seed[0], 1: per_seed[1]})
    assert row[-1] == f"{100 * expected.mean:.1f} ± {100 * expected.std:.1f}"


def test_mean_over_fewer_categories_is_marked_and_not_bold(rows) -> None:
    table = main_table(rows, "aupro")
    i = next(i for i, r in enumerate(table.rows) if r[0] == "beta")
    defined = [v for c in table.header[1:-1] for v in _values(rows, "beta", c, "aupro") if v is not None]
    assert table.rows[i][-1] == f"{100 * sum(defined) / len(defined):.1f}*"
    assert (i, len(table.header) - 1) not in table.bold
    assert "* = mean over fewer categories" in table.note


def test_best_is_bold_unless_every_method_ties(rows) -> None:
    table = main_table(rows, "pixel_auroc")
    col = table.header.index("widget")
    assert {table.rows[i][col] for i in range(len(table.rows))} <= {"100.0", "100.0 ± 0.0"}
    assert not any(j == col for _, j in table.bold)
    img = main_table(rows, "image_auroc")
    best = max(range(len(img.rows)), key=lambda i: float(img.rows[i][-1].split()[0]))
    assert (best, len(img.header) - 1) in img.bold


def test_format_and_escape() -> None:
    assert fmt_cell(None) == "–" and fmt_cell(Cell({0: None})) == "–"
    assert fmt_cell(Cell({0: 0.12345})) == "12.3"
    assert fmt_cell(Cell({0: -0.05}), signed=True) == "-5.0"
    assert fmt_cell(Cell({0: 0.05}, partial=True), signed=True) == "+5.0*"
    assert render.tex_escape("nut_and_bolt 50% ± 1 – x") == r"nut\_and\_bolt 50\% $\pm$ 1 -- x"


def test_sections_follow_the_rows(rows) -> None:
    keys = [t.key for t in build_tables(rows)]
    assert keys == ["image_auroc", "pixel_auroc", "aupro", "defect_image_auroc", "defect_aupro", "groups",
                    "factors", "cost"]
    only_main = [r for r in rows if r["scope"] == "category"]
    assert [t.key for t in build_tables(only_main)] == ["image_auroc", "pixel_auroc", "aupro"]


def test_procedural_texture_runs_are_marked_in_markdown_and_html(rows) -> None:
    """DRAEM runs without DTD (result.json method_notes.anomaly_source == "procedural") carry a mark and a note."""
    from miad.bench.report import build_report
    from miad.bench.results import procedural_textures

    assert procedural_textures({"method_notes": {"anomaly_source": "procedural"}})
    assert not procedural_textures({"method_notes": {"anomaly_source": "/data/dtd/images"}})
    assert not procedural_textures({})  # results written before method_notes existed
    method = rows[0]["method"]
    marked = [{**r, "procedural_textures": r["method"] == method} for r in rows]
    tables = build_tables(marked)
    text = render.markdown(tables)
    assert f"{method}†" in text and "procedural anomaly textures, not DTD" in text
    page = build_report(tables, [], {}, None, None, [])
    assert f"{method}†" in page and "procedural anomaly textures, not DTD" in page
    assert "†" not in render.markdown(build_tables(rows))


def test_values_that_read_the_same_are_all_bold() -> None:
    """0.98041 and 0.98 both read 98.0: both are bold (the 6-digit comparison bolded only the first)."""
    base = {"scope": "category", "setting": "per-category", "unified": False, "seed": 0, "category": "widget"}
    rows = [{**base, "method": m, "image_auroc": v} for m, v in (("a", 0.98041), ("b", 0.98), ("c", 0.9))]
    table = main_table(rows, "image_auroc")
    col = table.header.index("widget")
    assert [table.rows[i][col] for i in range(3)] == ["98.0", "98.0", "90.0"]
    assert {(0, col), (1, col)} <= table.bold and (2, col) not in table.bold


def test_a_run_selected_on_test_never_takes_the_bold() -> None:
    """--protocol paper-selection rows are shown beside the held-out ones but are optimistic by construction: the
    best held-out value is bold even where a selected-on-test value is higher."""
    base = {"scope": "category", "setting": "per-category", "unified": False, "seed": 0, "category": "widget"}
    rows = [{**base, "method": "a", "image_auroc": 0.90}, {**base, "method": "b", "image_auroc": 0.80},
            {**base, "method": "a", "protocol": "paper-selection", "image_auroc": 0.95}]
    table = main_table(rows, "image_auroc")
    col = table.header.index("widget")
    names = [r[0] for r in table.rows]
    selected = names.index("a [selected on test]")
    assert table.rows[selected][col] == "95.0"
    assert (names.index("a"), col) in table.bold and (selected, col) not in table.bold
    assert "do not compete for bold" in table.note
