"""Chunked exact nearest-neighbour search equals a brute-force search, for any chunking and bank dtype."""

from __future__ import annotations

import pytest
import torch

from miad.methods.patchcore.knn import k_nearest, nearest_neighbor, nearest_neighbor_levels
from miad.methods.patchcore.model import concat_levels


def _data(dtype=torch.float32, n_queries=50):
    gen = torch.Generator().manual_seed(0)
    query = torch.randn(n_queries, 12, generator=gen)
    bank = torch.randn(700, 12, generator=gen).to(dtype)
    return query, bank, bank.float().pow(2).sum(1)


@pytest.mark.parametrize("block", [1, 50 * 300, 1 << 24])  # 256-row chunks (3 chunks), 300 rows, one chunk
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_nearest_neighbor_is_exact(block, dtype):
    query, bank, bank_sq = _data(dtype)
    dist = torch.cdist(query.double(), bank.double()) ** 2
    want_d, want_i = dist.min(dim=1)
    got_d, got_i = nearest_neighbor(query, bank, bank_sq, block)
    assert torch.equal(got_i, want_i)
    torch.testing.assert_close(got_d.double(), want_d, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("block", [1, 1 << 24])
def test_k_nearest_is_exact_and_sorted(block):
    query, bank, bank_sq = _data()
    dist = torch.cdist(query.double(), bank.double()) ** 2
    want_d, want_i = dist.topk(9, dim=1, largest=False)
    got_d, got_i = k_nearest(query, bank, bank_sq, 9, block)
    assert torch.equal(got_i, want_i)
    torch.testing.assert_close(got_d.double(), want_d, rtol=1e-4, atol=1e-4)
    assert (got_d.diff(dim=1) >= 0).all()


def test_cpu_query_blocks_match_one_block():
    query, bank, bank_sq = _data(n_queries=2500)  # 3 query blocks of at most 1024 rows
    want_d, want_i = (torch.cdist(query.double(), bank.double()) ** 2).min(dim=1)
    got_d, got_i = nearest_neighbor(query, bank, bank_sq)
    assert torch.equal(got_i, want_i)
    torch.testing.assert_close(got_d.double(), want_d, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])  # quick (anomalib >= 1.0) and paper (anomalib v0.3.7)
@pytest.mark.parametrize("block", [None, 1])  # cache-sized CPU blocks of whole images; 256-row chunks
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_level_wise_search_equals_search_on_the_upsampled_embedding(block, dtype, mode):
    gen = torch.Generator().manual_seed(3)
    levels = [torch.randn(5, 6, 24, 24, generator=gen), torch.randn(5, 10, 12, 12, generator=gen)]
    emb = concat_levels(levels, mode).reshape(-1, 16)  # [5*576, 16]
    bank = torch.randn(600, 16, generator=gen).to(dtype)
    bank_sq = bank.float().pow(2).sum(1)
    want_d, want_i = nearest_neighbor(emb, bank, bank_sq)
    got_d, got_i = nearest_neighbor_levels(levels, bank, bank_sq, emb.pow(2).sum(1).view(5, -1), block, mode)
    assert (got_i == want_i).float().mean() > 0.999  # rounding may flip a near-tie
    torch.testing.assert_close(got_d, want_d, rtol=1e-4, atol=1e-4)
