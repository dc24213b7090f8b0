"""The seven MIAD scenario scenes, by folder name (the order of MIAD's Table A.1)."""

from __future__ import annotations

from miad.data.synth.scenes import catenary, insulator, nut_bolt, photovoltaic, welding, wind_turbine, witness_mark
from miad.data.synth.scenes.base import Scene

SCENES: dict[str, Scene] = {
    s.name: s
    for s in (
        insulator.SCENE,
        welding.SCENE,
        photovoltaic.SCENE,
        wind_turbine.SCENE,
        catenary.SCENE,
        nut_bolt.SCENE,
        witness_mark.SCENE,
    )
}
