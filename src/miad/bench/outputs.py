"""Everything a benchmark folder shows, rebuilt from its finished runs: results, tables, figures, report.

Safe to call at any time (also by hand on a folder whose benchmark was interrupted): it reads only the
finished runs' files and replaces each output atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from miad.atomic import write_drawn, write_text_atomic
from miad.bench import figures, render
from miad.bench.report import build_report
from miad.bench.results import collect_rows, write_results
from miad.bench.rundir import error_of, failed_runs, read_result, run_dirs
from miad.bench.tables import build_tables
from miad.errors import MiadError


def write_outputs(out: str | Path, cache: dict[str, list[dict[str, Any]]] | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """(rows, name -> path written) for the benchmark folder `out`; cache: see `results.collect_rows`."""
    out = Path(out)
    rows = collect_rows(out, cache)
    if not rows:
        raise MiadError(f"{out} holds no finished run (no runs/*/*/seed*/result.json); run `miad benchmark` first")
    written: dict[str, Path] = {}
    write_results(out, rows)
    written.update({"results.jsonl": out / "results.jsonl", "results.csv": out / "results.csv"})
    tables = build_tables(rows)
    write_text_atomic(out / "tables.md", render.markdown(tables))
    write_text_atomic(out / "tables.tex", render.latex(tables))
    written.update({"tables.md": out / "tables.md", "tables.tex": out / "tables.tex"})
    fig = write_drawn(out / "figure_a1.png", lambda p: figures.figure_a1(out, p))
    factor_png = write_drawn(out / "figure_factors.png", lambda p: figures.factor_figure(rows, p))
    written.update({k: v for k, v in (("figure_a1.png", fig), ("figure_factors.png", factor_png)) if v})
    results = [read_result(d) for d in run_dirs(out)]
    invocation = json.loads((out / "benchmark.json").read_text()) if (out / "benchmark.json").is_file() else {}
    failures = [f"{d.relative_to(out).as_posix()}: {error_of(d)}" for d in failed_runs(out)]
    page = build_report(tables, results, invocation, fig, factor_png, failures)
    write_text_atomic(out / "report.html", page)
    written["report.html"] = out / "report.html"
    return rows, written

