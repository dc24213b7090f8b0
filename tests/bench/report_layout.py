"""A paper-sized report (6 methods + 2 unified, MIAD's 7 scenarios, 3 seeds, 3 factors) and its layout as headless
Chromium lays it out: which tables are wider than their box at a given window width.

Chromium is used when installed (`chromium` or `chromium-browser` on PATH); it runs the page with a small script
appended that records, for each table, whether it overflows its container or the viewport.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

from miad.data.defects import MIAD_DEFECTS, defect_group

METHODS = ("reverse_distillation", "patchcore", "fastflow", "draem", "unet_ae", "uniad")
FACTORS = ("viewpoint", "background", "surface")

_MEASURE = """<script>
const view = document.documentElement.clientWidth, over = [];
document.querySelectorAll('table').forEach(t => {
  const box = t.parentElement, heading = box.previousElementSibling;
  const name = heading && heading.id ? heading.id : (heading ? heading.textContent : '?');
  if (box.scrollWidth > box.clientWidth + 1 || t.getBoundingClientRect().right > view + 1) over.push(name);
});
document.body.setAttribute('data-layout', JSON.stringify({view: view, page: document.documentElement.scrollWidth,
                                                         over: over}));
</script>"""


def paper_size_rows(seed: int = 0) -> list[dict]:
    """Flat rows as `miad benchmark` writes them, for the paper's grid (values random, structure real)."""
    rng = random.Random(seed)
    rows = []
    for method in METHODS:
        for unified in (False, True) if method in ("uniad", "patchcore") else (False,):
            for s in range(3):
                base = {"method": method, "setting": "unified" if unified else "per-category", "seed": s,
                        "unified": unified, "procedural_textures": method == "draem", "run": f"{method}/{s}"}
                rows += _run_rows(base, rng)
    return rows


def _metrics(rng: random.Random) -> dict:
    return {"image_auroc": rng.uniform(0.5, 1), "pixel_auroc": rng.uniform(0.7, 1), "aupro": rng.uniform(0.3, 1),
            "n_good": 25, "n_defect": 25}


def _run_rows(base: dict, rng: random.Random) -> list[dict]:
    rows = []
    for category, defects in MIAD_DEFECTS.items():
        rows.append({**base, "scope": "category", "category": category, "subset": "", **_metrics(rng)})
        rows += [{**base, "scope": "defect_type", "category": category, "subset": d, **_metrics(rng)} for d in defects]
        for group in sorted({defect_group(category, d) for d in defects}):
            rows.append({**base, "scope": "group", "category": category, "subset": group, **_metrics(rng)})
        for factor in FACTORS:
            rows += [{**base, "scope": "factor", "category": category, "subset": f"{factor}/{b}",
                      "image_auroc": rng.uniform(0.4, 1), "n_good": 8, "n_defect": 8} for b in ("low", "mid", "high")]
    rows.append({**base, "scope": "run", "category": "", "subset": "", "fit_seconds": rng.uniform(10, 90000),
                 "inference_ms_per_image": rng.uniform(1, 900), "cpu_seconds": rng.uniform(10, 90000),
                 "peak_rss_mb": rng.uniform(500, 40000), "peak_cuda_mb": rng.uniform(500, 80000), "epochs": 200})
    return rows


def browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def measure(report: Path, width: int = 1400, height: int = 1000, timeout: float = 120) -> dict:
    """{"view": viewport width, "page": document width, "over": [tables wider than their box]} in Chromium."""
    probe = report.with_name(report.stem + ".layout.html")
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    out = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          f"--window-size={width},{height}", "--hide-scrollbars", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=timeout, check=True).stdout
    found = re.search(r'data-layout="([^"]*)"', out)
    assert found, f"Chromium gave no layout for {probe}: {out[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))
