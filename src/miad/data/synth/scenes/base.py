"""What a scenario scene provides to the renderer.

`sample(rng, defect)` draws the scene's own natural variation (the normal configuration) and then, after it, the
defect's placement, so the normal part of the parameters never depends on the defect. `draw(painter, params,
defective)` paints the scene; called with defective=False and True on copies of the same canvas it gives the
normal and the defective rendering of one scene. Drawing must be a pure function of (params, defective): any
texture randomness comes from generators seeded by numbers stored in params.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from miad.data.synth.painter import Colour, Painter


@dataclass(frozen=True)
class Scene:
    name: str
    defects: tuple[str, ...]
    backdrop: tuple[Colour, Colour]  # the controlled background: top and bottom colours of a plain gradient
    sample: Callable[[np.random.Generator, str | None], Any]
    draw: Callable[[Painter, Any, bool], None]


def check_defect(scene: str, defects: tuple[str, ...], defect: str | None) -> None:
    if defect is not None and defect not in defects:
        raise ValueError(f"{scene} has no defect type {defect!r}; valid: {', '.join(defects)}")
