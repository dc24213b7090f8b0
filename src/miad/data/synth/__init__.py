"""The built-in mini-MIAD: procedural 2-D renderings of MIAD's 7 scenarios with all 14 defect types.

MIAD (arXiv 2211.13968) photographs outdoor maintenance scenes whose viewpoint, background and surface are not
controlled. This package draws recognisable stand-ins (insulator disc strings, weld seams, solar cell grids,
turbine blades, catenary droppers, bolted joints, witness marks) with numpy and OpenCV, applies those three
uncontrolled factors with per-scenario strengths, and writes the MIAD/MVTec folder layout with exact masks and
a manifest of every image's factor values. Same parameters, same bytes.

    from miad.data.synth import generate
    generate("mini-miad", n_train=20, size=128)

Modules: `spec` (strengths, seeds), `scenes/` (one module per scenario), `factors/` (viewpoint, background,
surface), `painter` and `noise` (drawing), `render` (one image and its mask), `writer` (the tree), `sheet`.
Deviations from the real data set: 2-D procedural drawings, not photographs; defect folder names are those of
`miad.data.defects.MIAD_DEFECTS`.
"""

from miad.data.synth.render import Example, render_example
from miad.data.synth.sheet import write_sheet
from miad.data.synth.spec import DEFAULT_STRENGTHS, FACTORS, SYNTH_VERSION, Strengths, resolve_strengths
from miad.data.synth.writer import MANIFEST, MANIFEST_COLUMNS, generate

__all__ = [
    "DEFAULT_STRENGTHS",
    "FACTORS",
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "SYNTH_VERSION",
    "Example",
    "Strengths",
    "generate",
    "render_example",
    "resolve_strengths",
    "write_sheet",
]
