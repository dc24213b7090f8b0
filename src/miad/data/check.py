"""`miad data check`: index a tree collecting every problem, then read every file once.

The indexers run in collecting mode (they never stop at the first problem), so the layout rules live in one
place; this module adds what indexing does not do: decoding each image and mask (zero-byte, truncated or
non-image files) and comparing each mask's size with its image's. Nothing is written into the tree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from miad.data.index import detect_format, index_dataset
from miad.data.io import Problem, UnreadableFileError, load_mask, load_rgb, read_size
from miad.data.mvtec import as_root
from miad.types import Sample

_DECODE_SIZE = 32  # decode check only: JPEGs are then decoded at 1/8 scale, which still reads every byte
Key = tuple[str, str, str]  # (category, split, defect_type)


@dataclass
class CheckReport:
    """What `check_tree` found: image and mask counts per (category, split, defect_type), and all problems."""

    root: Path
    format: str
    images: dict[Key, int] = field(default_factory=dict)
    masks: dict[Key, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def table(self) -> str:
        header = ("category", "split", "defect_type", "images", "masks")
        rows = [(*key, str(n), str(self.masks.get(key, 0))) for key, n in self.images.items()]
        rows.append(("total", "", "", str(sum(self.images.values())), str(sum(self.masks.values()))))
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = []
        for row in [header, *rows]:
            cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def render(self) -> str:
        head = f"data check: {self.root} (format {self.format})"
        if self.ok:
            return f"{head}\n{self.table()}\n\nno problems found"
        n_err = len(self.errors)
        summary = (
            f"{len(self.problems)} problem(s): {n_err} error(s), {len(self.problems) - n_err} warning(s)"
        )
        return "\n".join([head, self.table(), "", summary, *map(str, self.problems)])


def check_tree(root: str | Path, format: str = "auto", progress: bool | None = None) -> CheckReport:
    """Validate a data tree without stopping at the first problem.

    progress: show a progress bar while decoding (None: only on a terminal).
    """
    path = as_root(root)
    resolved = detect_format(path) if format == "auto" else format
    problems: list[Problem] = []
    samples = index_dataset(path, resolved, problems=problems)
    report = CheckReport(path, resolved, problems=problems)
    report.images = dict(Counter((s.category, s.split, s.defect_type) for s in samples))
    report.masks = dict(Counter((s.category, s.split, s.defect_type) for s in samples if s.mask is not None))
    bar = tqdm(samples, desc="reading files", unit="img", disable=None if progress is None else not progress)
    for sample in bar:
        problems.extend(check_sample_files(sample))
    return report


def check_sample_files(sample: Sample) -> list[Problem]:
    """Problems with one sample's files: an unreadable image or mask, or a mask of another size."""
    problems: list[Problem] = []
    image_size = None
    try:
        load_rgb(sample.image, _DECODE_SIZE)
        image_size = read_size(sample.image)
    except UnreadableFileError as exc:
        problems.append(Problem(exc.path, exc.reason))
    if sample.mask is None:
        return problems
    try:
        mask = load_mask(sample.mask)
    except UnreadableFileError as exc:
        return [*problems, Problem(exc.path, exc.reason)]
    mask_size = (mask.shape[1], mask.shape[0])
    if image_size is not None and mask_size != image_size:
        reason = (
            f"mask is {mask_size[0]}x{mask_size[1]} but its image {sample.image} is "
            f"{image_size[0]}x{image_size[1]}; is it paired with the right image? "
            "fix the pairing or resize the mask"
        )
        problems.append(Problem(sample.mask, reason))
    return problems
