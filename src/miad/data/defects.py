"""MIAD's scenarios and defect types (appendix Table A.1) and the surface / logical grouping.

This is the one editable table for the grouping. The paper separates surface and logical anomalies but publishes
no per-type list; this reading is miad's own (not the paper's): cracks, broken parts, weld beading, weld pits and
foreign bodies change texture or shape locally (surface); missing or loose parts are normal-looking parts in a
wrong configuration (logical). The real release's defect folder names are not all known, so indexers discover
them from `test/*`; these names are the ones the built-in generator writes.
"""

from __future__ import annotations

MIAD_DEFECTS: dict[str, tuple[str, ...]] = {
    "electrical_insulator": ("crack",),
    "metal_welding": ("weld_beading", "weld_pit"),
    "photovoltaic_module": ("broken", "miss", "foreign_body"),
    "wind_turbine": ("crack",),
    "catenary_dropper": ("looseness", "broken", "miss"),
    "nut_and_bolt": ("looseness", "bolt_miss", "nut_miss"),
    "witness_mark": ("looseness",),
}
MIAD_CATEGORIES: tuple[str, ...] = tuple(MIAD_DEFECTS)

MVTEC_CATEGORIES: tuple[str, ...] = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)

SURFACE, LOGICAL = "surface", "logical"

# (category, defect type) -> group. Edit here; everything else reads `defect_group`.
DEFECT_GROUPS: dict[tuple[str, str], str] = {
    ("electrical_insulator", "crack"): SURFACE,
    ("metal_welding", "weld_beading"): SURFACE,
    ("metal_welding", "weld_pit"): SURFACE,
    ("photovoltaic_module", "broken"): SURFACE,
    ("photovoltaic_module", "miss"): LOGICAL,
    ("photovoltaic_module", "foreign_body"): SURFACE,
    ("wind_turbine", "crack"): SURFACE,
    ("catenary_dropper", "looseness"): LOGICAL,
    ("catenary_dropper", "broken"): SURFACE,
    ("catenary_dropper", "miss"): LOGICAL,
    ("nut_and_bolt", "looseness"): LOGICAL,
    ("nut_and_bolt", "bolt_miss"): LOGICAL,
    ("nut_and_bolt", "nut_miss"): LOGICAL,
    ("witness_mark", "looseness"): LOGICAL,
}

# For categories outside the table (a user's own tree, MVTec AD, MIAD folder-name variants): words that mark a
# wrong configuration rather than a damaged surface.
_LOGICAL_WORDS = ("miss", "loose", "misplace", "swap", "flip", "wrong", "absent", "lack")


def defect_group(category: str, defect_type: str) -> str:
    """'surface' or 'logical' for a defect type; the table first, then the keyword rule."""
    key = (category, defect_type.lower())
    if key in DEFECT_GROUPS:
        return DEFECT_GROUPS[key]
    name = defect_type.lower()
    return LOGICAL if any(w in name for w in _LOGICAL_WORDS) else SURFACE
