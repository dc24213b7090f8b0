"""Exact nearest-neighbour search against the memory bank, in blocks of bounded memory.

Squared distances come from matrix products, ||q||^2 - 2 q.b + ||b||^2 (no torch.cdist, so the path exports to
ONNX); ||q||^2 is added once after the minimum, since it does not change which bank row is nearest. The bank may
be stored in float16: each chunk is widened to the query dtype before the product.

Block sizes: on CPU, blocks of 1024 queries x 1024 bank rows keep each distance block in cache for the minimum
that follows (2 threads here: 142 vs 99 GFLOP/s for 64 MB blocks at 1536 dims, 25 vs 13 at 64 dims). A traced
graph (ONNX export) must serve any batch size, so there the queries stay whole and only the bank, whose size is
fixed after fitting, is cut into chunks planned from the bank alone; GPUs take the same path with large blocks.
"""

from __future__ import annotations

import torch

from miad import ops

MIN_CHUNK_ROWS = 256  # below this, matrix products get inefficient
CPU_QUERY_ROWS = 1024  # query rows per block on CPU (eager mode)
LEVELWISE_MIN_CHANNELS = 256  # up-sampled channels from which level-wise search pays (see levelwise_pays)
DEFAULT_BLOCK = {"cpu": 1024 * 1024, "traced": 1 << 24, "gpu": 1 << 26}  # distances held at once
TRACED_NOMINAL_QUERIES = 8192  # traced plans: 2,048-row chunks at the default block (8 images of a 32x32 grid)


def chunk_rows(n_queries: int, bank_size: int, block_elements: int, at_least: int = 1) -> int:
    """Bank rows per chunk so that one chunk's distance matrix holds about `block_elements` values.

    While tracing, the plan comes from the bank alone (TRACED_NOMINAL_QUERIES stands for the query count): a
    traced graph serves every batch size, and a plan sized from the example batch froze the chunk starts at that
    batch while the slice ends stayed batch-dependent, so other batch sizes searched only part of the bank.
    """
    queries = TRACED_NOMINAL_QUERIES if torch.jit.is_tracing() else max(int(n_queries), 1)
    rows = max(MIN_CHUNK_ROWS, at_least, block_elements // queries)
    return min(rows, max(bank_size, 1))


def nearest_neighbor(
    query: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor, block_elements: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """query [M,D] float, bank [K,D], bank_sq [K] (= ||b||^2) -> (squared distance [M], bank index [M]).

    block_elements: distances held at once; None picks per device (see the module docstring).
    """
    tracing = torch.jit.is_tracing()
    if tracing or query.device.type != "cpu" or query.shape[0] <= CPU_QUERY_ROWS:
        kind = "traced" if tracing else ("cpu" if query.device.type == "cpu" else "gpu")
        return _nearest(query, bank, bank_sq, block_elements or DEFAULT_BLOCK[kind])
    parts = [_nearest(q, bank, bank_sq, block_elements or DEFAULT_BLOCK["cpu"]) for q in query.split(CPU_QUERY_ROWS)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _nearest(
    query: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor, block_elements: int
) -> tuple[torch.Tensor, torch.Tensor]:
    rows = chunk_rows(query.shape[0], bank.shape[0], block_elements)
    best = best_idx = None
    for start in range(0, bank.shape[0], rows):
        chunk = bank[start : start + rows].to(query.dtype)  # [c,D]
        partial = torch.addmm(bank_sq[start : start + rows], query, chunk.t(), alpha=-2.0)  # [M,c] = d^2 - ||q||^2
        value, index = partial.min(dim=1)
        best, best_idx = _keep_closer(best, best_idx, value, index + start)
    assert best is not None and best_idx is not None, "the memory bank is empty"
    return (best + query.pow(2).sum(1)).clamp_min(0.0), best_idx


def _keep_closer(
    best: torch.Tensor | None, best_idx: torch.Tensor | None, value: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Running minimum over bank chunks; strict '<' keeps the lower index on ties, as one global min would."""
    if best is None or best_idx is None:
        return value, index
    closer = value < best
    return torch.where(closer, value, best), torch.where(closer, index, best_idx)


def levelwise_pays(levels: list[torch.Tensor]) -> bool:
    """Level-wise search trades multiply-adds of the up-sampled channels for an up-sampling pass over each distance
    block: worth it for wide levels (WRN50 layer3: 1024 channels, 1.3x faster), not for narrow ones (Lite0's 40
    channels: 2x slower)."""
    return sum(f.shape[1] for f in levels[1:]) >= LEVELWISE_MIN_CHANNELS


def nearest_neighbor_levels(
    levels: list[torch.Tensor],
    bank: torch.Tensor,
    bank_sq: torch.Tensor,
    query_sq: torch.Tensor,
    block_elements: int | None = None,
    mode: str = "bilinear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact 1-NN for anomalib's embedding without forming its up-sampled part in the products.

    The embedding concatenates levels[0] with levels[1:] up-sampled to levels[0]'s grid with `mode` (it must be
    the embedding's own mode: PatchCoreConfig.embed_upsample, else scores come from another embedding than the
    bank's). Up-sampling, bilinear or nearest, is linear, so q.b = q0.b0 + sum_l up(f_l.b_l): each level's
    products are computed at its own resolution and then up-sampled, which for WRN50 (layer3 at 14x14 under
    layer2's 28x28) halves the multiply-adds. Same arithmetic up to rounding. levels [B,C_l,H_l,W_l];
    bank [K, sum C_l]; query_sq [B,h*w] = ||q||^2 of the embedding -> (squared distance [B*h*w], index [B*h*w])
    in the embedding's (b, y, x) row order.
    """
    tracing, cpu = torch.jit.is_tracing(), levels[0].device.type == "cpu"
    if tracing or not cpu:
        kind = "traced" if tracing else "gpu"
        best, index = _nearest_levels(levels, bank, bank_sq, block_elements or DEFAULT_BLOCK[kind], mode)
    else:
        per_block = max(1, CPU_QUERY_ROWS // query_sq.shape[1])  # whole images per cache-sized block
        parts = [
            _nearest_levels(
                [f[i : i + per_block] for f in levels], bank, bank_sq, block_elements or DEFAULT_BLOCK["cpu"], mode
            )
            for i in range(0, levels[0].shape[0], per_block)
        ]
        best, index = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    return (best + query_sq).clamp_min(0.0).flatten(), index.flatten()


def _nearest_levels(
    levels: list[torch.Tensor], bank: torch.Tensor, bank_sq: torch.Tensor, block_elements: int, mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (min over the bank of ||b||^2 - 2 q.b [B,h*w], its index [B,h*w])."""
    b, grid = levels[0].shape[0], levels[0].shape[-2:]
    flat = [f.flatten(2) for f in levels]  # [B,C_l,H_l*W_l]
    widths = [f.shape[1] for f in levels]
    rows = chunk_rows(b * flat[0].shape[-1], bank.shape[0], block_elements)
    best = best_idx = None
    for start in range(0, bank.shape[0], rows):
        parts = bank[start : start + rows].to(flat[0].dtype).split(widths, dim=1)  # [c,C_l] each
        partial = torch.add(bank_sq[start : start + rows].view(1, -1, 1), parts[0] @ flat[0], alpha=-2.0)
        for part, f, level in zip(parts[1:], flat[1:], levels[1:]):
            products = (part @ f).view(b, -1, *level.shape[-2:])  # [B,c,H_l,W_l]: one map per bank row
            partial = torch.add(partial, ops.upsample(products, grid, mode=mode).flatten(2), alpha=-2.0)  # [B,c,h*w]
        value, index = partial.min(dim=1)  # [B,h*w]
        best, best_idx = _keep_closer(best, best_idx, value, index + start)
    assert best is not None and best_idx is not None, "the memory bank is empty"
    return best, best_idx


def k_nearest(
    query: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor, k: int, block_elements: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """query [M,D] (a few rows) -> (squared distances [M,k] ascending, bank indices [M,k]); requires k <= K."""
    rows = chunk_rows(query.shape[0], bank.shape[0], block_elements or DEFAULT_BLOCK["traced"], at_least=k)
    best = best_idx = None
    for start in range(0, bank.shape[0], rows):
        chunk = bank[start : start + rows].to(query.dtype)
        partial = torch.addmm(bank_sq[start : start + rows], query, chunk.t(), alpha=-2.0)  # [M,c]
        index = torch.arange(start, start + chunk.shape[0], device=query.device).expand_as(partial)
        if best is not None:
            partial = torch.cat([best, partial], dim=1)
            index = torch.cat([best_idx, index], dim=1)
        best, pos = partial.topk(k, dim=1, largest=False)  # sorted ascending
        best_idx = index.gather(1, pos)
    assert best is not None and best_idx is not None, "the memory bank is empty"
    return (best + query.pow(2).sum(1, keepdim=True)).clamp_min(0.0), best_idx
