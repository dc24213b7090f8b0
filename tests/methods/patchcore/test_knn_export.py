"""Traced (ONNX) PatchCore searches search the whole bank at every batch size, not only the export batch's.

Regression: chunk plans sized from the example batch froze the chunk starts at export time while the slice ends
stayed batch-dependent, so batch 8 searched 27 % of a real bank. Each search is traced at batch 2 with a bank of
at least 3 chunks and a block size whose query-sized plan would differ between batches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from miad.methods.patchcore.knn import chunk_rows, k_nearest, nearest_neighbor, nearest_neighbor_levels

ort = pytest.importorskip("onnxruntime")
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]

BANK_ROWS, GRID = 1000, 8
BATCHES = (1, 3, 8, 16)


class _Search(nn.Module):
    def __init__(self, kind: str, bank: torch.Tensor, block: int) -> None:
        super().__init__()
        self.kind, self.block = kind, block
        self.register_buffer("bank", bank)
        self.register_buffer("bank_sq", bank.pow(2).sum(1))

    def forward(self, level0: torch.Tensor, level1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "levels":
            up = nn.functional.interpolate(level1, size=level0.shape[-2:], mode="bilinear", align_corners=False)
            flat = torch.cat([level0, up], 1).flatten(2).transpose(1, 2)  # [B,h*w,D]
            query_sq = flat.pow(2).sum(-1)
            return nearest_neighbor_levels([level0, level1], self.bank, self.bank_sq, query_sq, self.block)
        if self.kind == "plain":
            query = level0.flatten(2).transpose(1, 2).flatten(0, 1)  # [B*h*w, C0]
            return nearest_neighbor(query, self.bank[:, : level0.shape[1]].contiguous(), self.bank_sq, self.block)
        query = level0.mean((2, 3))  # [B,C0]: one query per image, as the re-weighting lookup
        bank = self.bank[:, : level0.shape[1]].contiguous()
        return k_nearest(query, bank, bank.pow(2).sum(1), 9, self.block)


def _levels(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 8, GRID, GRID, generator=gen), torch.randn(batch, 8, GRID // 2, GRID // 2, generator=gen)


# Blocks chosen so that a query-sized plan gives 512 bank rows at the export batch and 256 at batch 8.
@pytest.mark.parametrize("kind,block", [("plain", 2 * GRID * GRID * 512), ("levels", 2 * GRID * GRID * 512),
                                        ("reweight", 2 * 300)])
def test_traced_search_matches_eager_at_every_batch(kind, block, tmp_path):
    bank = torch.randn(BANK_ROWS, 16, generator=torch.Generator().manual_seed(1))
    module = _Search(kind, bank, block).eval()
    path = tmp_path / f"{kind}.onnx"
    with torch.no_grad():
        torch.onnx.export(module, _levels(2, 0), str(path), dynamo=False, input_names=["l0", "l1"],
                          dynamic_axes={"l0": {0: "b"}, "l1": {0: "b"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in BATCHES:
        l0, l1 = _levels(batch, seed=batch)
        want_d, want_i = module(l0, l1)
        feeds = {"l0": l0.numpy(), "l1": l1.numpy()}
        got_d, got_i = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
        np.testing.assert_array_equal(got_i, want_i.numpy(), err_msg=f"{kind} at batch {batch}")
        np.testing.assert_allclose(got_d, want_d.numpy(), rtol=1e-4, atol=1e-4)


def test_traced_plan_depends_on_the_bank_alone():
    class _Plan(nn.Module):
        def forward(self, x):
            return x * chunk_rows(x.shape[0], 10**7, 1 << 24)

    traced = torch.jit.trace(_Plan(), torch.ones(2))
    assert float(traced(torch.ones(16))[0]) == float(traced(torch.ones(1))[0]) == 2048
    assert chunk_rows(2, 10**7, 1 << 24) != chunk_rows(16, 10**7, 1 << 24)  # eager plans follow the queries
