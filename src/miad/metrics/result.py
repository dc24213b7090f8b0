"""The metrics record returned by `MetricAccumulator.compute()` and `evaluate()`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

IMAGE_METRICS = ("image_auroc", "image_ap", "image_f1_max")
PIXEL_METRICS = ("pixel_auroc", "pixel_ap", "pixel_f1_max", "aupro")
METRICS = IMAGE_METRICS + PIXEL_METRICS
COUNTS = ("n_good", "n_defect")

Entry = dict[str, float]  # the METRICS (NaN when undefined) plus the COUNTS of one evaluated set


@dataclass
class MetricsResult:
    """Per category, mean over categories, per defect type and per surface/logical group.

    per_category: category -> Entry.
    mean: metric -> mean of the per-category values (the paper's summary); categories where the metric is
        undefined are left out of the mean and named in `notes`.
    per_defect: (category, defect_type) -> Entry for that type's images vs the category's good images.
    groups: group ("surface"/"logical") -> category -> Entry for the group's defect images vs the category's
        good images; group_means: group -> metric -> mean over the categories having that group.
    notes: why some values are NaN, or which images were left out.
    """

    per_category: dict[str, Entry]
    mean: dict[str, float]
    per_defect: dict[tuple[str, str], Entry]
    groups: dict[str, dict[str, Entry]]
    group_means: dict[str, dict[str, float]]
    fpr_limit: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: NaN becomes None, (category, type) keys become "category/type"."""
        return {
            "fpr_limit": self.fpr_limit,
            "per_category": {c: _clean(e) for c, e in self.per_category.items()},
            "mean": _clean(self.mean),
            "per_defect": {f"{c}/{t}": _clean(e) for (c, t), e in self.per_defect.items()},
            "groups": {g: {c: _clean(e) for c, e in per.items()} for g, per in self.groups.items()},
            "group_means": {g: _clean(m) for g, m in self.group_means.items()},
            "notes": list(self.notes),
        }


def _clean(entry: dict[str, float]) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {}
    for key, value in entry.items():
        if key in COUNTS:
            out[key] = int(value)
        else:
            out[key] = None if math.isnan(value) else float(value)
    return out


def mean_over(entries: dict[str, Entry], label: str, notes: list[str]) -> dict[str, float]:
    """Per metric, the mean over the entries where it is defined; a note names the ones left out."""
    means: dict[str, float] = {}
    for metric in METRICS:
        defined = {name: e[metric] for name, e in entries.items() if not math.isnan(e[metric])}
        means[metric] = sum(defined.values()) / len(defined) if defined else float("nan")
        missing = sorted(set(entries) - set(defined))
        if missing and defined:
            notes.append(f"{label} {metric}: mean over {len(defined)} categories; undefined for {missing}")
    return means
