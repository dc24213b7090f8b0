"""From flat rows to table cells: per method label and column, one value per seed, then mean +- std over seeds.

A method label is the method name, suffixed " [selected on test]" for runs of the paper-selection protocol and
" (unified)" for one-model-for-all-categories runs. Summaries over
categories (the "mean" column, group and factor means) are taken per seed first and then over seeds, so the
std says how much the summary moves with the seed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from miad.data.defects import MIAD_CATEGORIES

Row = dict[str, Any]


@dataclass
class Cell:
    """One table cell: a value per seed (None = undefined for that seed)."""

    by_seed: dict[int, float | None] = field(default_factory=dict)
    partial: bool = False  # a summary over fewer categories than the table shows

    @property
    def values(self) -> list[float]:
        return [v for _, v in sorted(self.by_seed.items()) if v is not None and not math.isnan(v)]

    @property
    def mean(self) -> float | None:
        vals = self.values
        return sum(vals) / len(vals) if vals else None

    @property
    def std(self) -> float | None:
        """Sample std over seeds (n - 1); None with fewer than two seeds."""
        vals = self.values
        if len(vals) < 2:
            return None
        m = sum(vals) / len(vals)
        return math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


PROCEDURAL_MARK = "†"  # runs on procedural anomaly textures, not DTD (tables.PROCEDURAL_NOTE)


SELECTED_MARK = " [selected on test]"  # a paper-selection run (miad.selection): before " (unified)"


def label(row: Row) -> str:
    name = str(row["method"]) + (PROCEDURAL_MARK if row.get("procedural_textures") else "")
    name += SELECTED_MARK if row.get("protocol") == "paper-selection" else ""
    return f"{name} (unified)" if row.get("unified") else name


def labels_of(rows: Iterable[Row]) -> list[str]:
    """Method labels in a stable order: by method name, the per-category setting before the unified one."""
    return sorted({label(r) for r in rows}, key=lambda s: (s.replace(" (unified)", ""), s.endswith(")")))


def ordered_categories(names: Iterable[str]) -> list[str]:
    """MIAD's table order for MIAD categories, then any others alphabetically."""
    names = set(names)
    known = [c for c in MIAD_CATEGORIES if c in names]
    return known + sorted(names - set(known))


def select(rows: Iterable[Row], scope: str) -> list[Row]:
    return [r for r in rows if r["scope"] == scope]


def cells(rows: Iterable[Row], metric: str, column: Callable[[Row], str]) -> dict[tuple[str, str], Cell]:
    """(label, column) -> Cell of `metric`, one value per seed."""
    out: dict[tuple[str, str], Cell] = defaultdict(Cell)
    for r in rows:
        out[(label(r), column(r))].by_seed[int(r["seed"])] = r.get(metric)
    return out


def summary_cells(
    rows: Iterable[Row], metric: str, column: Callable[[Row], str], expected: Callable[[str], set[str]] | None = None,
) -> dict[tuple[str, str], Cell]:
    """(label, column) -> Cell of the per-seed mean of `metric` over the categories of the rows in that column.

    expected(column): the categories a complete summary covers; a seed covering fewer marks the cell partial.
    """
    per_seed: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    seen: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for r in rows:
        key = (label(r), column(r), int(r["seed"]))
        value = r.get(metric)
        if value is not None and not math.isnan(value):
            per_seed[key].append(float(value))
            seen[key].add(r["category"])
    out: dict[tuple[str, str], Cell] = defaultdict(Cell)
    for (lab, col, seed), vals in per_seed.items():
        cell = out[(lab, col)]
        cell.by_seed[seed] = sum(vals) / len(vals)
        if expected is not None and seen[(lab, col, seed)] != expected(col):
            cell.partial = True
    return out


def factor_delta_cells(rows: Iterable[Row], factor: str) -> tuple[dict[str, dict[str, Cell]], dict[str, list[str]]]:
    """Per label: bin -> Cell (mean over categories where all three terciles are defined) and "delta" -> Cell
    (high minus low per seed); plus label -> the categories used."""
    by_key: dict[tuple[str, int, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        name, _, bin_name = r["subset"].partition("/")
        if name == factor and r.get("image_auroc") is not None:
            by_key[(label(r), int(r["seed"]), r["category"])][bin_name] = float(r["image_auroc"])
    out: dict[str, dict[str, Cell]] = defaultdict(lambda: defaultdict(Cell))
    used: dict[str, set[str]] = defaultdict(set)
    complete: dict[tuple[str, int], list[dict[str, float]]] = defaultdict(list)
    for (lab, seed, category), bins in sorted(by_key.items()):
        if {"low", "mid", "high"} <= set(bins):
            complete[(lab, seed)].append(bins)
            used[lab].add(category)
    for (lab, seed), entries in complete.items():
        for bin_name in ("low", "mid", "high"):
            out[lab][bin_name].by_seed[seed] = sum(e[bin_name] for e in entries) / len(entries)
        out[lab]["delta"].by_seed[seed] = out[lab]["high"].by_seed[seed] - out[lab]["low"].by_seed[seed]
    return out, {lab: ordered_categories(cats) for lab, cats in used.items()}
