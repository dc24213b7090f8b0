"""Metrics of one category and of its defect types and surface/logical groups, from the accumulator's store.

Every evaluated set is "the category's good images plus some defect images": the whole category, one defect
type, or one group (grouping from `miad.data.defects.defect_group`). Pixels are ranked once per category:
the category's good images form one pool of normal pixels and each defect type another, each pool counted
in one pass over its maps against all of the category's anomalous scores (`ranks.build_bucket_pool`). A set's
ranks are then the sums over its pools, so the per-type and per-group breakdowns cost no further pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from miad.data.defects import defect_group
from miad.metrics.curves import (
    RankStats,
    auroc,
    average_precision,
    distinct_positives,
    f1_max,
    rank_stats,
    undefined_reason,
)
from miad.metrics.pixel import SAMPLE_STRIDE, Positives, choose_floor, metrics_from_stats
from miad.metrics.ranks import SortedPool, build_bucket_pool
from miad.metrics.result import COUNTS, METRICS, PIXEL_METRICS, Entry
from miad.types import GOOD, Sample

GOOD_POOL = GOOD


@dataclass
class StoredImage:
    """What the accumulator keeps per image (maps live in the accumulator's batch blocks)."""

    sample: Sample
    score: float
    block: int  # index of the map block, -1 when maps are not kept
    row: int
    positives: Positives | None  # None: no ground truth for this image, left out of the pixel metrics
    nonnegative: bool = False  # no value of the map has its sign bit set (raw float bits are ordered keys)

    @property
    def pool(self) -> str:
        return GOOD_POOL if self.sample.label == 0 else self.sample.defect_type


@dataclass
class CategoryResult:
    entry: Entry
    per_defect: dict[str, Entry]
    groups: dict[str, Entry]
    notes: list[str]


def _image_entry(images: Sequence[StoredImage], types: set[str], label: str, notes: list[str]) -> Entry:
    chosen = [im for im in images if im.sample.label == 0 or im.pool in types]
    labels = np.array([im.sample.label == 1 for im in chosen], dtype=bool)
    scores = np.array([im.score for im in chosen], dtype=np.float64)
    stats = rank_stats([SortedPool(scores[~labels])], distinct_positives(scores[labels]))
    entry: Entry = {"n_good": int((~labels).sum()), "n_defect": int(labels.sum())}
    reason = undefined_reason(stats, "image")
    if reason:
        notes.append(f"{label}: image metrics are NaN ({reason})")
    for name, fn in (("image_auroc", auroc), ("image_ap", average_precision), ("image_f1_max", f1_max)):
        entry[name] = float("nan") if reason else float(fn(stats))
    return entry


class _PixelPools:
    """One BucketPool per pool of the category (good images, each defect type), built in one pass each."""

    def __init__(self, images: Sequence[StoredImage], blocks: Sequence[np.ndarray]) -> None:
        usable = [im for im in images if im.positives is not None]
        self.by_pool: dict[str, list[StoredImage]] = {}
        for im in usable:
            self.by_pool.setdefault(im.pool, []).append(im)
        dtypes = {blocks[im.block].dtype for im in usable}
        dtype = np.dtype(np.float64) if np.dtype(np.float64) in dtypes else np.dtype(np.float32)
        self.positives = {
            name: Positives.concat([im.positives for im in ims], dtype)  # type: ignore[misc]
            for name, ims in self.by_pool.items()
        }
        every = np.concatenate([p.values for p in self.positives.values()] or [np.zeros(0, dtype)])
        u = distinct_positives(every)[0]
        sample = np.concatenate(
            [blocks[im.block][im.row].reshape(-1)[::SAMPLE_STRIDE] for im in usable] or [np.zeros(0, dtype)]
        )
        floor = choose_floor(sample, np.ones(sample.size, bool), float(u[0]) if u.size else np.inf, None)
        all_positive = all(im.nonnegative for im in usable)
        self.pools = {
            name: build_bucket_pool(
                u, _maps(ims, blocks), self.positives[name].values, dtype, floor, all_positive, sample
            )
            for name, ims in self.by_pool.items()
        }

    def stats(self, types: set[str]) -> RankStats:
        names = [n for n in self.pools if n == GOOD_POOL or n in types]
        parts = [self.positives[n] for n in names]
        values = np.concatenate([p.values for p in parts]) if parts else np.zeros(0, np.float32)
        inv_sizes = np.concatenate([p.inv_sizes for p in parts]) if parts else np.zeros(0)
        distinct = distinct_positives(values, inv_sizes)
        return rank_stats([self.pools[n] for n in names], distinct, sum(p.n_regions for p in parts))


def _maps(images: Sequence[StoredImage], blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    for im in images:
        yield blocks[im.block][im.row]


def _pixel_entry(
    pools: _PixelPools | None, types: set[str], fpr_limit: float, label: str, notes: list[str]
) -> dict[str, float]:
    if pools is None:
        return dict.fromkeys(PIXEL_METRICS, float("nan"))
    values, reason = metrics_from_stats(pools.stats(types), fpr_limit)
    if reason:
        notes.append(f"{label}: pixel metrics are NaN ({reason})")
    return values


def evaluate_category(
    category: str,
    images: Sequence[StoredImage],
    blocks: Sequence[np.ndarray],
    fpr_limit: float,
    compute_pixel: bool,
) -> CategoryResult:
    """The category's Entry, one per defect type and one per surface/logical group present."""
    notes: list[str] = []
    types = sorted({im.pool for im in images if im.sample.label == 1})
    skipped = sum(1 for im in images if im.positives is None and im.sample.label == 1)
    if compute_pixel and skipped:
        notes.append(f"{category}: {skipped} anomalous image(s) without a mask are left out of the pixel metrics")
    pools = _PixelPools(images, blocks) if compute_pixel else None

    def entry(selected: set[str], label: str) -> Entry:
        e = _image_entry(images, selected, label, notes)
        e.update(_pixel_entry(pools, selected, fpr_limit, label, notes))
        return {k: e[k] for k in METRICS + COUNTS}

    result = CategoryResult(entry(set(types), category), {}, {}, notes)
    for t in types:
        result.per_defect[t] = entry({t}, f"{category}/{t}")
    for group in sorted({defect_group(category, t) for t in types}):
        members = {t for t in types if defect_group(category, t) == group}
        result.groups[group] = entry(members, f"{category} [{group}]")
    return result
