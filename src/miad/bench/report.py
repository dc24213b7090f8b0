"""report.html: one self-contained offline page with every table, both figures and what each metric means.

Images are embedded as base64 PNG data URIs and the CSS is inline; the page loads nothing (no scripts, no
fonts, no links out), so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from miad.bench.render import html_table
from miad.bench.table_format import DASH, Table

METRIC_EXPLANATIONS = (
    ("Image AUROC", "Area under the ROC curve of the image scores: the probability that a random defective test "
     "image scores higher than a random good one (0.5 = chance, 1 = perfect separation). Threshold-free."),
    ("Pixel AUROC", "The same over every pixel of every test image of a category (good images count with "
     "all-normal masks). Dominated by the many normal pixels, so it is high even for rough maps."),
    ("AUPRO", "Area under the per-region-overlap curve up to a false-positive rate of 0.3, divided by 0.3 "
     "(MVTec AD convention). Each 8-connected defect region counts equally, whatever its size, so small defects "
     "matter as much as large ones."),
    ("mean ± std", "Mean over categories is taken per seed; ± is the sample standard deviation over seeds."),
    ("Surface / logical", "Surface anomalies change texture or shape locally (cracks, breaks, weld beading and "
     "pits, foreign bodies); logical anomalies are normal-looking parts in a wrong configuration (missing or "
     "loose parts)."),
    ("Thresholds", "No metric here uses a threshold. The decisions in each run's scores.csv use the preset's "
     "threshold_quantile (0.99 by default) of the scores of normal training images held out of training; the "
     "test split never picks thresholds, epochs or checkpoints."),
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1400px;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}h3{margin-top:1.4em}
table{border-collapse:collapse;font-size:.85em;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ccc;padding:3px 5px;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3;vertical-align:bottom}
thead th.group{text-align:center}thead tr+tr th:first-child{text-align:right}
.scroll{overflow-x:auto}.note{font-size:.85em;color:#555;max-width:1100px}
img{max-width:100%;border:1px solid #ddd}dt{font-weight:600;margin-top:.5em}dd{margin-left:1.2em}
code{background:#f4f4f4;padding:0 3px}
"""


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _figure(png: Path | None, caption: str) -> str:
    if png is None or not png.is_file():
        return f'<p class="note">{html.escape(caption)} (not drawn: no data for it).</p>'
    return (f'<figure><img alt="{html.escape(png.name)}" src="{data_uri(png)}">'
            f'<figcaption class="note">{html.escape(caption)}</figcaption></figure>')


def _runs_section(results: list[dict[str, Any]]) -> str:
    head = "<tr><th>Run</th><th>Trained on</th><th>Fit s</th><th>ms / image</th><th>Resumed after epoch</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(r['method'])} / {html.escape(r['setting'])} / seed {r['seed']}</td>"
        f"<td>{html.escape(', '.join(r.get('trained_on', [])))}</td><td>{r['fit_seconds']:.1f}</td>"
        f"<td>{r['inference_ms_per_image']:.1f}</td><td>{r.get('resumed_after_epoch') or DASH}</td></tr>"
        for r in results
    )
    return f'<div class="scroll"><table><thead>{head}</thead><tbody>{body}</tbody></table></div>'


def _provenance(results: list[dict[str, Any]], invocation: dict[str, Any]) -> str:
    first = results[0] if results else {}
    commits = sorted({r.get("git_commit", "unknown") for r in results})
    packages = ", ".join(f"{k} {v}" for k, v in first.get("packages", {}).items())
    host = first.get("host", {})
    items = [
        ("Data", invocation.get("data_root", first.get("data_root", "?"))),
        ("Preset", invocation.get("preset", "?")), ("Overrides", invocation.get("overrides") or "none"),
        ("Git commit", ", ".join(commits) or "unknown"), ("Packages", packages or "?"),
        ("Host", f"{host.get('platform', '?')}, {host.get('cpu_count', '?')} CPUs, device {host.get('device', '?')}"
                 + (f" ({host['gpu']})" if host.get("gpu") else "")),
    ]
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items) + "</dl>"


def _notes(results: list[dict[str, Any]]) -> str:
    notes = sorted({f"{r['method']} / {r['setting']} / seed {r['seed']}: {n}"
                    for r in results for n in r["metrics"].get("notes", [])})
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes[:200])
    return f"<h2>Metric notes</h2><ul class=\"note\">{items}</ul>"


def _failures(failures: list[str]) -> str:
    if not failures:
        return ""
    items = "".join(f"<li>{html.escape(f)}</li>" for f in failures)
    return (f'<p><b>{len(failures)} run(s) failed and are missing from the tables</b> (re-running the same command '
            f"retries only them):</p><ul class=\"note\">{items}</ul>")


def build_report(
    tables: list[Table], results: list[dict[str, Any]], invocation: dict[str, Any], figure_a1: Path | None,
    factor_png: Path | None, failures: list[str] = (),
) -> str:
    """The whole page as a string. The factor findings are part of the factor table's note (as in tables.md),
    so they are not listed again."""
    explain = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in METRIC_EXPLANATIONS)
    main = [t for t in tables if t.key not in ("factors", "cost")]
    factor = [t for t in tables if t.key == "factors"]
    cost = [t for t in tables if t.key == "cost"]
    toc = " · ".join(f"{html.escape(t.title)}" for t in tables)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>miad benchmark report</title><style>{CSS}</style></head><body>",
        "<h1>miad benchmark report</h1>",
        "<p>Unsupervised anomaly detection on MIAD-style data (MIAD: arXiv 2211.13968), every number computed by "
        f"this run of <code>miad benchmark</code>. {len(results)} run(s). Tables: {toc}.</p>",
        _failures(failures), "<h2>What the metrics mean</h2>", f"<dl>{explain}</dl>",
        "<h2>Results</h2>", *[html_table(t) for t in main],
        "<h2>Figure A.1: qualitative results</h2>",
        _figure(figure_a1, "Rows: one defective test image per category. Columns: the image, its ground truth, "
                "each method's heat map stretched over the image's own range (where it looks), then each method's "
                "map on a fixed scale from its held-out normal pixels (median normal pixel = blue, most anomalous "
                "held-out normal pixel and above = red: what it would flag)."),
    ]
    if factor:
        parts += ["<h2>Uncontrolled factors (beyond the paper)</h2>", html_table(factor[0]),
                  _figure(factor_png, "Image AUROC per factor tercile, one line per method.")]
    parts += ["<h2>Cost and provenance</h2>", *[html_table(t) for t in cost], _provenance(results, invocation),
              "<h3>Runs</h3>", _runs_section(results), _notes(results), "</body></html>"]
    return "\n".join(parts) + "\n"
