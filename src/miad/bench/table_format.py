"""A benchmark table and its cells as text: what the tables, the protocol table and the renderers share."""

from __future__ import annotations

from dataclasses import dataclass, field

from miad.bench.aggregate import Cell

MAIN_METRICS = {"image_auroc": "Image AUROC", "pixel_auroc": "Pixel AUROC", "aupro": "AUPRO (FPR <= 0.3)"}
DASH = "–"


@dataclass
class Table:
    key: str  # short identifier (HTML anchor)
    title: str
    header: list[str]
    rows: list[list[str]]  # formatted cells; the first column is the row name
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) cells to emphasise
    note: str = ""


def fmt_cell(cell: Cell | None, scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    if cell is None or cell.mean is None:
        return DASH
    sign = "+" if signed else ""
    text = f"{scale * cell.mean:{sign}.{digits}f}"
    if cell.std is not None:
        text += f" ± {scale * cell.std:.{digits}f}"
    return text + ("*" if cell.partial else "")
