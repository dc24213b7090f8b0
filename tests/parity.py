"""Parity of an exported model with its checkpoint, by the rule the README states: scores within TOLERANCE of the
largest reference score, maps within TOLERANCE of the reference map's maximum, and identical decisions (image and
pixel) except where the reference value lies within that tolerance of the threshold."""

from __future__ import annotations

import numpy as np

from miad.export import TOLERANCE


def assert_parity(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], threshold: float | None,
                  pixel_threshold: float | None, where: str, scales: tuple[float, float] | None = None) -> None:
    """got / want: (scores [B], maps [B,S,S]); scales: the largest |score| and |map value| of the whole reference
    set when `want` is a slice of it (default: of `want`)."""
    score_scale, map_scale = scales or (None, None)
    assert_values_parity(got[0], want[0], threshold, f"{where}: scores", score_scale)
    assert_values_parity(got[1], want[1], pixel_threshold, f"{where}: maps", map_scale)


def assert_values_parity(got: np.ndarray, want: np.ndarray, threshold: float | None, what: str,
                         scale: float | None = None) -> None:
    tol = TOLERANCE * (float(np.abs(want).max()) if scale is None else scale)
    err = float(np.abs(got - want).max())
    assert err <= tol, f"{what} differ by {err:.3g} > {tol:.3g}"
    if threshold is not None:
        differ = (got > threshold) != (want > threshold)
        clear = np.abs(want - threshold) > tol
        assert not (differ & clear).any(), f"{what}: {int((differ & clear).sum())} decisions differ off the threshold"
