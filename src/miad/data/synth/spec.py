"""Parameters of the generator: factor strengths per scenario (appendix A.3) and per-image random streams.

MIAD's three uncontrolled factors are viewpoint, background and surface. Each image draws the fraction of each
factor it applies uniformly from [0, strength]; strength 0 means the factor is controlled (a fixed view, a
plain backdrop, a clean evenly lit surface). The defaults follow the paper's appendix A.3: "The photovoltaic
module scenario is only affected by uncontrolled viewpoints ... methods fail on the electrical insulator, the nut
and bolt mainly due to uncontrolled viewpoints ... on the metal welding mainly [because of] uncontrolled surface
... on the catenary dropper mainly because of uncontrolled background ... the combination of uncontrolled
viewpoints, background and surface result in the failure cases of all methods on the witness mark." The wind
turbine, which the appendix calls relatively easy, gets mild strengths on all three.

Every image has its own random generator seeded from (seed, scenario, split, index, stream), so an image does
not depend on how many others are generated, nor on the process that renders it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import numpy as np

from miad.data.defects import MIAD_DEFECTS
from miad.errors import ConfigError

# Bump when the rendering changes: it names the cache folder (builtin-v<N>). A cached copy is regenerated anyway
# when the renderer's source changes (fingerprint in miad.data.builtin), so a forgotten bump serves no stale data.
SYNTH_VERSION = 1

FACTORS: tuple[str, ...] = ("viewpoint", "background", "surface")


@dataclass(frozen=True)
class Strengths:
    """Upper bounds in [0, 1] of the per-image factor fractions."""

    viewpoint: float = 0.0
    background: float = 0.0
    surface: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ConfigError(
                    f"{f.name} strength must be a number in [0, 1] (0 = controlled), got {value!r}; "
                    f"pass e.g. --{f.name} 0.5"
                )


DEFAULT_STRENGTHS: Mapping[str, Strengths] = {
    "electrical_insulator": Strengths(viewpoint=0.8, background=0.3, surface=0.2),
    "metal_welding": Strengths(viewpoint=0.2, background=0.1, surface=0.9),
    "photovoltaic_module": Strengths(viewpoint=0.7, background=0.0, surface=0.0),
    "wind_turbine": Strengths(viewpoint=0.3, background=0.25, surface=0.2),
    "catenary_dropper": Strengths(viewpoint=0.2, background=0.9, surface=0.2),
    "nut_and_bolt": Strengths(viewpoint=0.8, background=0.25, surface=0.3),
    "witness_mark": Strengths(viewpoint=0.8, background=0.7, surface=0.7),
}
assert tuple(DEFAULT_STRENGTHS) == tuple(MIAD_DEFECTS)

SPLIT_CODES: Mapping[str, int] = {"train": 0, "test_good": 1, "test_defect": 2}
STREAMS: Mapping[str, int] = {"scene": 0, "viewpoint": 1, "background": 2, "surface": 3}


def check_scenarios(scenarios: Iterable[str] | None) -> tuple[str, ...]:
    """The scenarios to generate, validated against MIAD's seven (None = all, in table order)."""
    if scenarios is None:
        return tuple(MIAD_DEFECTS)
    chosen = tuple(dict.fromkeys(scenarios))
    unknown = [s for s in chosen if s not in MIAD_DEFECTS]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown scenario(s) {unknown or '(none given)'}; valid: {', '.join(MIAD_DEFECTS)} "
            "(pass them comma-separated, e.g. --scenarios wind_turbine,witness_mark)"
        )
    return chosen


def resolve_strengths(
    scenarios: Iterable[str],
    strengths: Strengths | Mapping[str, Strengths] | None = None,
    **overrides: float | None,
) -> dict[str, Strengths]:
    """Per-scenario strengths: the defaults, or one `Strengths` for all, or a per-scenario mapping (missing
    scenarios keep their defaults); then keyword overrides (viewpoint=0.5) that are not None apply to all."""
    unknown = set(overrides) - set(FACTORS)
    if unknown:
        raise ConfigError(f"unknown factor(s) {sorted(unknown)}; valid: {', '.join(FACTORS)}")
    out: dict[str, Strengths] = {}
    for name in scenarios:
        if isinstance(strengths, Strengths):
            base = strengths
        else:
            base = (strengths or {}).get(name, DEFAULT_STRENGTHS[name])
        values = {f: getattr(base, f) for f in FACTORS}
        values.update({k: float(v) for k, v in overrides.items() if v is not None})
        out[name] = Strengths(**values)
    return out


def image_rng(seed: int, scenario: str, split: str, index: int, stream: str, attempt: int = 0) -> np.random.Generator:
    """The random generator of one stream of one image (stable under changes to the other images)."""
    key = [int(seed) % (1 << 64), zlib.crc32(scenario.encode()), SPLIT_CODES[split], index, STREAMS[stream], attempt]
    return np.random.default_rng(np.random.SeedSequence(key))
