"""The difference the peers' test-set selection makes: held-out vs paper-selection runs, per method.

Only for a benchmark that ran both protocols (`--protocol held-out,paper-selection`). The paper-selection
numbers are selected on the test set (miad.selection), so they are optimistic by construction: the table says how
much of a gap to the paper's numbers that selection can explain.
"""

from __future__ import annotations

from miad.bench.aggregate import SELECTED_MARK, Cell, Row, label, labels_of, select, summary_cells
from miad.bench.table_format import MAIN_METRICS, Table, fmt_cell
from miad.selection import NO_RULE

PROTOCOL = "paper-selection"


def selection_table(rows: list[Row]) -> Table | None:
    """A Table of mean held-out, mean selected-on-test and their difference per main metric, and the epochs kept;
    None without paper-selection runs."""
    cat_rows = select(rows, "category")
    chosen = [r for r in cat_rows if r.get("protocol") == PROTOCOL]
    if not chosen:
        return None
    held = [r for r in cat_rows if r.get("protocol") != PROTOCOL]
    bases = labels_of(held + chosen)
    bases = [b for b in bases if SELECTED_MARK not in b and any(_base(label(r)) == b for r in chosen)]
    header, body = ["Method"], []
    for name in MAIN_METRICS.values():
        header += [f"{name.split(' (')[0]} held-out", "selected on test", "Δ"]
    header.append("Epoch kept / max")
    for base in bases:
        line = [base]
        for metric in MAIN_METRICS:
            h = _mean(held, metric, base)
            s = _mean(chosen, metric, base)
            line += [fmt_cell(h), fmt_cell(s), fmt_cell(_difference(s, h), signed=True)]
        line.append(_epochs(rows, base))
        body.append(line)
    others = sorted({r["method"] for r in held} - {r["method"] for r in chosen})
    unchanged = "; ".join(f"{m}: {NO_RULE[m]}" for m in others if m in NO_RULE)
    note = ("Values in %: mean over the categories (per seed, then mean ± std over seeds). 'selected on test' = "
            "--protocol paper-selection: the kept epoch was chosen on the TEST set's pixel AUROC, as the code MIAD "
            "ran did (miad.selection), so it is optimistic; Δ = selected on test − held-out, in points."
            + (f" Not listed, the protocol changes nothing for them: {unchanged}." if unchanged else ""))
    return Table("selection", "Test-set selection (paper-selection) vs held-out", header, body, set(), note)


def _base(lab: str) -> str:
    return lab.replace(SELECTED_MARK, "")


def _mean(rows: list[Row], metric: str, base: str) -> Cell | None:
    means = summary_cells(rows, metric, lambda r: "mean")
    return next((c for (lab, _), c in means.items() if _base(lab) == base), None)


def _difference(a: Cell | None, b: Cell | None) -> Cell | None:
    if a is None or b is None:
        return None
    seeds = [s for s in a.by_seed if s in b.by_seed and a.by_seed[s] is not None and b.by_seed[s] is not None]
    return Cell({s: a.by_seed[s] - b.by_seed[s] for s in seeds}) if seeds else None


def _epochs(rows: list[Row], base: str) -> str:
    runs = [r for r in select(rows, "run") if r.get("protocol") == PROTOCOL and _base(label(r)) == base]
    kept = sorted({int(r["selected_epoch"]) for r in runs if r.get("selected_epoch") is not None})
    top = sorted({int(r["max_epochs"]) for r in runs if r.get("max_epochs") is not None})
    return f"{'/'.join(map(str, kept)) or '–'} / {'/'.join(map(str, top)) or '–'}"
