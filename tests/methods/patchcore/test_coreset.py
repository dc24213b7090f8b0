"""Coreset plan, greedy k-centre against a plain reference, and the streaming selection's bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from miad.methods.patchcore.coreset import StreamingCoreset, greedy_k_center, plan_coreset, random_projection


def reference_greedy(x: np.ndarray, k: int, start: int) -> list[int]:
    """Obviously correct greedy k-centre: full distance recomputation at every step."""
    picked = [start]
    while len(picked) < k:
        d = np.min(((x[:, None, :] - x[None, picked, :]) ** 2).sum(-1), axis=1)
        picked.append(int(np.argmax(d)))
    return picked


def test_greedy_matches_reference():
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
    start = int(torch.randint(300, (1,), generator=torch.Generator().manual_seed(7)))
    got = greedy_k_center(x, 40, torch.Generator().manual_seed(7)).tolist()
    assert got == reference_greedy(x.double().numpy(), 40, start)


def test_greedy_picks_outliers_first_and_handles_small_sets():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(1)) * 0.1
    x[123] = 50.0  # far away from everything: the first or second pick
    picked = greedy_k_center(x, 10, torch.Generator().manual_seed(0)).tolist()
    assert 123 in picked[:2] and len(set(picked)) == 10
    assert greedy_k_center(x[:5], 9).tolist() == [0, 1, 2, 3, 4]
    assert greedy_k_center(x, 0).numel() == 0


@pytest.mark.parametrize(
    "total,ratio,chunk,cap",
    [(100_352, 0.1, 10_000, None), (999, 0.3, 100, None), (7_840_000, 0.1, 10_000, 500_000), (50, 0.1, 1000, None)],
)
def test_plan_sizes(total, ratio, chunk, cap):
    plan = plan_coreset(total, ratio, chunk, cap)
    want = min(round(ratio * total), cap) if cap else round(ratio * total)
    assert plan.bank_size == want
    lengths = np.diff(plan.bounds)
    assert plan.bounds[0] == 0 and plan.bounds[-1] == total and lengths.max() <= chunk
    assert lengths.max() - lengths.min() <= 1  # equal chunks: no tiny last chunk
    assert all(0 <= c <= n for c, n in zip(plan.counts, lengths))
    assert plan.exact == (total <= chunk)


def test_streaming_picks_input_rows_and_equals_exact_greedy_in_one_chunk():
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(1000, 16, generator=gen)
    proj = random_projection(16, 8, seed=0)

    def run(plan, sizes):
        stream = StreamingCoreset(plan, 16, projection=proj, seed=3)
        for part in torch.split(feats, sizes):
            stream.add(part)
        return stream.finish()

    chunked = plan_coreset(1000, 0.1, 300, None)
    assert not chunked.exact and len(chunked.counts) == 4
    bank = run(chunked, 37)
    assert bank.shape == (100, 16) and torch.equal(bank, run(chunked, 37))  # seeded: reproducible
    rows = {tuple(r) for r in feats.tolist()}
    assert all(tuple(r) in rows for r in bank.tolist()) and len({tuple(r) for r in bank.tolist()}) == 100
    one = plan_coreset(1000, 0.1, 1000, None)
    assert one.exact
    same = torch.Generator().manual_seed(3)  # the stream shuffles its batch, then starts greedy, from one generator
    shuffled = feats[torch.randperm(1000, generator=same)]
    torch.testing.assert_close(run(one, 1000), shuffled[greedy_k_center(shuffled @ proj, 100, same)])


def test_streaming_float16_bank_and_stream_length_checks():
    plan = plan_coreset(200, 0.5, 64, 40)
    stream = StreamingCoreset(plan, 4, bank_dtype=torch.float16)
    assert stream._buffer.shape[0] <= 64  # only one chunk of input vectors is ever held
    stream.add(torch.randn(150, 4))
    with pytest.raises(ValueError, match="ended after 150 of 200"):
        stream.finish()
    with pytest.raises(ValueError, match="longer than planned"):
        stream.add(torch.randn(51, 4))
    stream.add(torch.randn(50, 4))
    bank = stream.finish()
    assert bank.shape == (40, 4) and bank.dtype == torch.float16


def test_chunked_selection_covers_nearly_as_well_as_exact_greedy():
    """A stream whose first half is one tight blob and second half a wide spread (as an image's plain background
    followed by its busy part): exact greedy spends most picks on the spread, and so must the chunked selection.
    Without the per-batch shuffle the chunks' fixed quotas give a 23 % larger mean distance to the bank."""
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(2000, 4, generator=gen) * 0.05, torch.rand(2000, 4, generator=gen) * 4])

    def mean_distance(bank: torch.Tensor) -> float:
        return torch.cdist(x, bank).min(dim=1).values.mean().item()

    exact = x[greedy_k_center(x, 400, torch.Generator().manual_seed(0))]
    stream = StreamingCoreset(plan_coreset(4000, 0.1, 500), 4, seed=0)
    stream.add(x)
    assert mean_distance(stream.finish()) <= 1.12 * mean_distance(exact)
