"""The benchmark's tables, built once from flat rows and rendered as Markdown, LaTeX (`miad.bench.render`) or HTML.

Paper layout for the three main metrics: rows = methods, columns = the categories + mean, values in percent,
mean +- std over seeds when there are several, the best value of each column in bold. Then per defect type,
surface vs logical, per uncontrolled factor (when the data has a manifest) and the cost of each method.
"""

from __future__ import annotations

from miad.bench.aggregate import (
    PROCEDURAL_MARK,
    SELECTED_MARK,
    Cell,
    Row,
    cells,
    factor_delta_cells,
    label,
    labels_of,
    ordered_categories,
    select,
    summary_cells,
)
from miad.bench.factors import FACTOR_NAMES
from miad.bench.protocol_table import selection_table
from miad.bench.table_format import DASH, MAIN_METRICS, Table, fmt_cell
from miad.data.defects import defect_group

PROCEDURAL_NOTE = (f"{PROCEDURAL_MARK} DRAEM trained on procedural anomaly textures, not DTD as the original code "
                   "(README: DRAEM anomaly textures).")


def _bold_best(grid: list[list[Cell | None]], axis: str, labels: list[str]) -> set[tuple[int, int]]:
    """Cells holding the highest mean of their column (axis='column') or row as shown (fmt_cell's 0.1 points, so
    two cells that read the same are both bold), unless all values there tie. `labels`: the competing methods
    (rows for axis='column', else columns); partial summaries and runs selected on the test set do not compete."""
    best: set[tuple[int, int]] = set()
    n_rows, n_cols = len(grid), len(grid[0]) if grid else 0
    lines = [[(i, j) for i in range(n_rows)] for j in range(n_cols)] if axis == "column" else \
        [[(i, j) for j in range(n_cols)] for i in range(n_rows)]
    for line in lines:
        means = {(i, j): grid[i][j].mean for i, j in line
                 if grid[i][j] is not None and grid[i][j].mean is not None and not grid[i][j].partial
                 and SELECTED_MARK not in labels[i if axis == "column" else j]}
        rounded = {k: float(fmt_cell(Cell({0: m}))) for k, m in means.items()}  # the value a reader compares
        if len(set(rounded.values())) >= 2:  # an all-way tie has no best
            top = max(rounded.values())
            best |= {(i, j + 1) for (i, j), m in rounded.items() if m == top}
    return best


def _seeds_note(rows: list[Row], bold: bool = True) -> str:
    seeds = sorted({int(r["seed"]) for r in rows})
    if len(seeds) > 1:
        text = f"Values in %: mean ± std over seeds {', '.join(map(str, seeds))} (where a method has several)."
    else:
        text = f"Values in %, seed {seeds[0]}." if seeds else "Values in %."
    if not bold:
        return text
    text += " Best in bold (ties: each; none where every method ties)."
    if any(r.get("protocol") == "paper-selection" for r in rows):
        text += " Runs selected on the test set do not compete for bold."
    return text


def main_table(rows: list[Row], metric: str) -> Table:
    rows = select(rows, "category")
    labels, cats = labels_of(rows), ordered_categories(r["category"] for r in rows)
    per_cat = cells(rows, metric, lambda r: r["category"])
    means = summary_cells(rows, metric, lambda r: "mean", lambda _: set(cats))
    grid = [[per_cat.get((lab, c)) for c in cats] + [means.get((lab, "mean"))] for lab in labels]
    body = [[lab] + [fmt_cell(c) for c in line] for lab, line in zip(labels, grid)]
    note = _seeds_note(rows) + " Mean = mean over the categories, per seed."
    if any(means.get((lab, "mean")) and means[(lab, "mean")].partial for lab in labels):
        note += " * = mean over fewer categories than shown (some runs missing or undefined)."
    bold = _bold_best(grid, "column", labels)
    return Table(metric, MAIN_METRICS[metric], ["Method", *cats, "Mean"], body, bold, note)


def defect_table(rows: list[Row], metric: str) -> Table:
    rows = select(rows, "defect_type")
    labels = labels_of(rows)
    order = {c: i for i, c in enumerate(ordered_categories(r["category"] for r in rows))}
    keys = sorted({(r["category"], r["subset"]) for r in rows}, key=lambda k: (order[k[0]], k[1]))
    per = cells(rows, metric, lambda r: f"{r['category']}/{r['subset']}")
    grid = [[per.get((lab, f"{c}/{t}")) for lab in labels] for c, t in keys]
    body = [[f"{c} / {t}", defect_group(c, t)] + [fmt_cell(x) for x in line] for (c, t), line in zip(keys, grid)]
    bold = {(i, j + 1) for i, j in _bold_best(grid, "row", labels)}  # shifted past the group column
    note = _seeds_note(rows) + " Each defect type's images against its category's good images."
    return Table(f"defect_{metric}", f"Per defect type: {MAIN_METRICS[metric]}", ["Defect type", "Group", *labels],
                 body, bold, note)


def group_table(rows: list[Row]) -> Table:
    rows = select(rows, "group")
    labels = labels_of(rows)
    groups = [g for g in ("surface", "logical") if any(r["subset"] == g for r in rows)]
    columns = [(m, g) for m in MAIN_METRICS for g in groups]
    per = {m: summary_cells(rows, m, lambda r: r["subset"]) for m in MAIN_METRICS}
    grid = [[per[m].get((lab, g)) for m, g in columns] for lab in labels]
    body = [[lab] + [fmt_cell(c) for c in line] for lab, line in zip(labels, grid)]
    header = ["Method"] + [f"{MAIN_METRICS[m].split(' (')[0]} {g}" for m, g in columns]
    note = (_seeds_note(rows) + " A group's defects against the good images of the same category, averaged over "
            "the categories that have that group (surface: cracks, breaks, weld beading/pits, foreign bodies; "
            "logical: missing or loose parts).")
    return Table("groups", "Surface vs logical anomalies", header, body, _bold_best(grid, "column", labels), note)


def factor_table(rows: list[Row]) -> Table | None:
    rows = select(rows, "factor")
    if not rows:
        return None
    labels = labels_of(rows)
    factors = [f for f in FACTOR_NAMES if any(r["subset"].startswith(f + "/") for r in rows)]
    header, grid, used_by_factor = ["Method"], [[] for _ in labels], {}
    for factor in factors:
        per, used = factor_delta_cells(rows, factor)
        used_by_factor[factor] = sorted({c for cats in used.values() for c in cats})
        header += [f"{factor} {b}" for b in ("low", "mid", "high")] + [f"{factor} Δ"]
        for i, lab in enumerate(labels):
            grid[i] += [per.get(lab, {}).get(b) for b in ("low", "mid", "high", "delta")]
    body = [[lab] + [fmt_cell(c, signed=header[j + 1].endswith("Δ")) for j, c in enumerate(line)]
            for lab, line in zip(labels, grid)]
    where = "; ".join(f"{f} varies in {', '.join(c) or 'no category'}" for f, c in used_by_factor.items())
    note = (_seeds_note(rows, bold=False) + " Image AUROC inside terciles of each uncontrolled "
            "factor's per-image value (manifest.csv): a tercile's defective images against its good images, per "
            "category, averaged over the categories where the factor varies. Δ = high − low tercile, in points: "
            f"negative means the method degrades as the factor grows. {where}. {_bin_size_note(rows)}")
    return Table("factors", "Per uncontrolled factor: image AUROC by factor tercile (beyond the paper)",
                 header, body, set(), note)


def _bin_size_note(rows: list[Row]) -> str:
    """How many images a tercile holds: with few, differences of several points are noise."""
    sizes = [int(r["n_good"] or 0) + int(r["n_defect"] or 0) for r in rows if r.get("image_auroc") is not None]
    if not sizes:
        return ""
    lo, hi, median = min(sizes), max(sizes), sorted(sizes)[len(sizes) // 2]
    held = f"{lo}" if lo == hi else f"{lo}-{hi} (median {median})"
    return f"A tercile holds {held} test images; with few images, differences of several points can be chance."


def factor_findings(rows: list[Row]) -> list[str]:
    """One plain sentence per factor: the average change over methods, and the methods at both extremes."""
    rows = select(rows, "factor")
    out = []
    for factor in FACTOR_NAMES:
        per, _ = factor_delta_cells(rows, factor)
        deltas = {lab: 100 * c["delta"].mean for lab, c in per.items() if c["delta"].mean is not None}
        if not deltas:
            continue
        worst, best = min(deltas, key=deltas.get), max(deltas, key=deltas.get)
        avg = sum(deltas.values()) / len(deltas)
        out.append(f"As {factor} grows from its low to its high tercile, image AUROC changes by {avg:+.1f} points "
                   f"on average over {len(deltas)} method(s); lowest change: {worst} ({deltas[worst]:+.1f}), "
                   f"highest: {best} ({deltas[best]:+.1f}).")
    return out


def cost_table(rows: list[Row]) -> Table:
    rows = select(rows, "run")
    labels = labels_of(rows)
    body = []
    for lab in labels:
        own = [r for r in rows if label(r) == lab]
        fit_runs = [float(r["fit_seconds"]) for r in own]
        ms = [float(r["inference_ms_per_image"]) for r in own]
        cpu = [float(r["cpu_seconds"]) for r in own if r.get("cpu_seconds") is not None]
        rss = [r["peak_rss_mb"] for r in own if r.get("peak_rss_mb") is not None]
        cuda = [r["peak_cuda_mb"] for r in own if r.get("peak_cuda_mb") is not None]
        epochs = sorted({int(r["epochs"] or 0) for r in own})
        body.append([lab, str(len(own)), "/".join(map(str, epochs)), f"{sum(fit_runs) / len(fit_runs):.1f}",
                     f"{sum(fit_runs):.1f}", f"{sum(ms) / len(ms):.1f}",
                     f"{sum(cpu) / len(cpu):.1f}" if cpu else DASH, f"{max(rss):.0f}" if rss else DASH,
                     f"{max(cuda):.0f}" if cuda else DASH])
    note = ("Fit s = wall time of fit per run (training plus held-out statistics; epochs of a resumed run "
            "counted once); ms/image = prediction time per test image (metric bookkeeping included); CPU s = "
            "process CPU time of fit and test over all threads (the part run by the last process of a resumed run), "
            "which a busy shared machine inflates less than wall time; peak RSS = the most resident memory of the "
            "process seen during a run; peak CUDA = torch.cuda.max_memory_allocated during a run.")
    header = ["Method", "Runs", "Epochs", "Fit s / run", "Fit s total", "ms / image", "CPU s / run", "Peak RSS MB",
              "Peak CUDA MB"]
    return Table("cost", "Cost", header, body, set(), note)


def build_tables(rows: list[Row]) -> list[Table]:
    """Every table that the rows support, in report order."""
    tables = [main_table(rows, m) for m in MAIN_METRICS]
    if select(rows, "defect_type"):
        tables += [defect_table(rows, "image_auroc"), defect_table(rows, "aupro")]
    if select(rows, "group"):
        tables.append(group_table(rows))
    factors = factor_table(rows)
    if factors is not None:
        factors.note += " " + " ".join(factor_findings(rows))
        tables.append(factors)
    if select(rows, "run"):
        tables.append(cost_table(rows))
    chosen = selection_table(rows)  # only when paper-selection runs exist (--protocol)
    if chosen is not None:
        tables.append(chosen)
    for table in tables:
        if any(PROCEDURAL_MARK in str(row[0]) for row in table.rows):
            table.note = f"{table.note} {PROCEDURAL_NOTE}".strip()
    return tables
