"""One rendered image at a time: masks, the normal twin, determinism and the factor knobs."""

from __future__ import annotations

import numpy as np
import pytest

from miad.data.defects import LOGICAL, MIAD_DEFECTS, defect_group
from miad.data.synth import DEFAULT_STRENGTHS, Strengths, render_example
from miad.data.synth.render import min_mask_pixels
from miad.errors import ConfigError

SIZE = 64
ALL_DEFECTS = [(s, d) for s, types in MIAD_DEFECTS.items() for d in types]


def test_all_fourteen_defect_types_are_rendered():
    assert len(ALL_DEFECTS) == 14


@pytest.mark.parametrize(("scenario", "defect"), ALL_DEFECTS)
def test_defect_mask_is_exactly_where_the_image_differs_from_its_normal_twin(scenario, defect):
    for index in range(2):
        ex = render_example(scenario, defect, size=SIZE, seed=5, index=index)
        assert ex.image.shape == ex.normal.shape == (SIZE, SIZE, 3) and ex.image.dtype == np.uint8
        assert ex.mask.shape == (SIZE, SIZE) and set(np.unique(ex.mask)) == {0, 255}
        inside = ex.mask > 0
        differs = (ex.image != ex.normal).any(axis=2)
        assert inside.sum() >= min_mask_pixels(SIZE)
        # Outside the mask the defective image is the normal rendering, pixel for pixel.
        assert not differs[~inside].any()
        # The mask holds the changed pixels, not a loose box around them.
        assert differs[inside].mean() >= 0.85, f"only {differs[inside].mean():.0%} of the mask changed"


@pytest.mark.parametrize(
    "scenario", [s for s in MIAD_DEFECTS if any(defect_group(s, d) == LOGICAL for d in MIAD_DEFECTS[s])]
)
def test_logical_defects_change_configuration_not_the_rest_of_the_scene(scenario):
    # At full size and with every factor on: the parts moved or removed are the only change.
    for defect in (d for d in MIAD_DEFECTS[scenario] if defect_group(scenario, d) == LOGICAL):
        ex = render_example(scenario, defect, size=128, seed=1, strengths=Strengths(1.0, 1.0, 1.0))
        outside = ex.mask == 0
        np.testing.assert_array_equal(ex.image[outside], ex.normal[outside])
        assert (ex.mask > 0).mean() < 0.5  # a part, not the whole view


def test_good_image_has_an_empty_mask_and_is_its_own_normal():
    ex = render_example("witness_mark", None, size=SIZE, split="train", index=3)
    assert not ex.mask.any()
    assert ex.image is ex.normal or np.array_equal(ex.image, ex.normal)


def test_same_arguments_give_the_same_pixels_and_other_seeds_do_not():
    a = render_example("catenary_dropper", "broken", size=SIZE, seed=7, index=2)
    b = render_example("catenary_dropper", "broken", size=SIZE, seed=7, index=2)
    c = render_example("catenary_dropper", "broken", size=SIZE, seed=8, index=2)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.factors == b.factors
    assert not np.array_equal(a.image, c.image)


def test_splits_draw_different_scenes():
    train = render_example("photovoltaic_module", None, size=SIZE, split="train", index=0)
    test = render_example("photovoltaic_module", None, size=SIZE, split="test_good", index=0)
    assert not np.array_equal(train.image, test.image)


def test_strength_zero_gives_zero_factors_and_a_canonical_view():
    ex = render_example("witness_mark", "looseness", size=SIZE, strengths=Strengths(0.0, 0.0, 0.0))
    assert ex.factors["viewpoint"] == ex.factors["background"] == ex.factors["surface"] == 0.0
    assert ex.factors["rotation_deg"] == 0.0 and ex.factors["scale"] == 1.0 and ex.factors["brightness"] == 1.0


def test_factor_fractions_stay_within_their_strengths_and_vary():
    strengths = Strengths(viewpoint=0.6, background=0.3, surface=0.9)
    rows = [
        render_example("nut_and_bolt", None, size=32, split="train", index=i, strengths=strengths).factors
        for i in range(8)
    ]
    for name, bound in (("viewpoint", 0.6), ("background", 0.3), ("surface", 0.9)):
        values = [r[name] for r in rows]
        assert all(0.0 <= v <= bound for v in values)
        assert len(set(values)) > 4
    assert all(abs(r["rotation_deg"]) <= 30.0 * r["viewpoint"] + 1e-3 for r in rows)


def test_uncontrolled_factors_change_the_image():
    calm = render_example("catenary_dropper", None, size=SIZE, strengths=Strengths())
    busy = render_example("catenary_dropper", None, size=SIZE, strengths=Strengths(background=1.0))
    assert np.abs(calm.image.astype(int) - busy.image.astype(int)).mean() > 3


def test_default_strengths_follow_the_appendix():
    pv = DEFAULT_STRENGTHS["photovoltaic_module"]
    assert pv.viewpoint > 0 and pv.background == 0 and pv.surface == 0
    for name in ("electrical_insulator", "nut_and_bolt"):
        s = DEFAULT_STRENGTHS[name]
        assert s.viewpoint > max(s.background, s.surface)
    w = DEFAULT_STRENGTHS["metal_welding"]
    assert w.surface > max(w.viewpoint, w.background)
    c = DEFAULT_STRENGTHS["catenary_dropper"]
    assert c.background > max(c.viewpoint, c.surface)
    assert min(vars(DEFAULT_STRENGTHS["witness_mark"]).values()) >= 0.5


def test_invalid_strength_and_defect_are_rejected():
    with pytest.raises(ConfigError, match="viewpoint strength must be a number in \\[0, 1\\]"):
        Strengths(viewpoint=1.5)
    with pytest.raises(ValueError, match="valid: crack"):
        render_example("wind_turbine", "weld_pit", size=SIZE)
