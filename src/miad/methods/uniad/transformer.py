"""UniAD's reconstruction transformer: neighbour-masked attention, layer-wise learnable queries, feature jitter.

Written from the original's facts (zhiyuanyou/UniAD @ a5b9d9d models/reconstructions/uniad.py and
models/initializer.py; never copied). Tokens are batch-first [B, N, C] here (the original is sequence-first).
Attention is plain matmul + softmax with the neighbour mask as a precomputed additive buffer, so the whole module
exports to ONNX without nn.MultiheadAttention's fused kernels; parameters are laid out as in nn.MultiheadAttention
(one in-projection of 3C rows, one out-projection) and initialised as the original (xavier-uniform Linear weights,
zero biases, N(0, 1) queries, U(0, 1) positional tables). `shared_init` reproduces the original's layer cloning:
it deep-copies one encoder and one decoder layer and then re-initialises only nn.Linear modules, which
nn.MultiheadAttention's in-projection (a bare Parameter) and the learned query (an nn.Embedding) are not, so these
start identical in every layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def neighbour_mask(grid: int, size: int) -> torch.Tensor:
    """[N, N] bool, N = grid * grid (row-major tokens): True where key j lies in query i's size x size
    neighbourhood (|row_i - row_j| <= size // 2 and |col_i - col_j| <= size // 2), i.e. attention is forbidden."""
    idx = torch.arange(grid * grid)
    rows, cols = idx // grid, idx % grid
    half = size // 2
    near_rows = (rows[:, None] - rows[None, :]).abs() <= half
    near_cols = (cols[:, None] - cols[None, :]).abs() <= half
    return near_rows & near_cols


def attention_bias(grid: int, size: int) -> torch.Tensor:
    """Additive attention bias [N, N]: -inf inside each token's neighbourhood, 0 elsewhere (size 0: no mask)."""
    bias = torch.zeros(grid * grid, grid * grid)
    if size > 0:
        bias = bias.masked_fill(neighbour_mask(grid, size), float("-inf"))
    return bias


def feature_jitter(tokens: torch.Tensor, scale: float, prob: float) -> torch.Tensor:
    """With probability `prob`, add N(0, 1) noise scaled by scale * ||token||_2 / C to every token [B, N, C]."""
    if prob <= 0 or torch.rand(()).item() >= prob:
        return tokens
    norms = tokens.norm(dim=-1, keepdim=True) / tokens.shape[-1]  # [B,N,1]
    return tokens + torch.randn_like(tokens) * norms * scale


class Attention(nn.Module):
    """Multi-head attention with an optional additive bias [Nq, Nk] shared by the batch and the heads."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.in_proj = nn.Linear(dim, 3 * dim)  # rows: query, key, value projections
        self.out_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)  # on the attention weights, as nn.MultiheadAttention

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        w_q, w_k, w_v = self.in_proj.weight.chunk(3)
        b_q, b_k, b_v = self.in_proj.bias.chunk(3)
        q = self._split(F.linear(query, w_q, b_q))  # [B,H,Nq,D]
        k = self._split(F.linear(key, w_k, b_k))  # [B,H,Nk,D]
        v = self._split(F.linear(value, w_v, b_v))  # [B,H,Nk,D]
        scores = (q @ k.transpose(-2, -1)) * self.scale  # [B,H,Nq,Nk]
        if bias is not None:
            scores = scores + bias
        weights = self.dropout(scores.softmax(dim=-1))
        out = (weights @ v).transpose(1, 2).flatten(2)  # [B,Nq,C]
        return self.out_proj(out)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, -1).transpose(1, 2)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class EncoderLayer(nn.Module):
    """Post-norm: x = norm1(x + attn(x + pos, x + pos, x)); x = norm2(x + ffn(x))."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.attn = Attention(dim, heads, dropout)
        self.ffn = FeedForward(dim, ffn, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        qk = x + pos
        x = self.norm1(x + self.drop1(self.attn(qk, qk, x, bias)))
        return self.norm2(x + self.drop2(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Layer-wise learnable query: this layer's own query attends first to the encoder output, then to the
    previous decoder layer's output (the encoder output for the first layer); post-norm after each step."""

    def __init__(self, tokens: int, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(tokens, dim))  # N(0, 1) as nn.Embedding
        self.attn_encoder = Attention(dim, heads, dropout)
        self.attn_previous = Attention(dim, heads, dropout)
        self.ffn = FeedForward(dim, ffn, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2, self.drop3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(
        self,
        previous: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        bias_encoder: torch.Tensor | None,
        bias_previous: torch.Tensor | None,
    ) -> torch.Tensor:
        q = self.query.unsqueeze(0).expand(memory.shape[0], -1, -1)  # [B,N,C]
        q = self.norm1(q + self.drop1(self.attn_encoder(q + pos, memory + pos, memory, bias_encoder)))
        q = self.norm2(q + self.drop2(self.attn_previous(q + pos, previous + pos, previous, bias_previous)))
        return self.norm3(q + self.drop3(self.ffn(q)))


class LearnedPosition(nn.Module):
    """Learned absolute 2-D position: [column table (C/2) | row table (C/2)] per token, row-major [N, C]."""

    def __init__(self, grid: int, dim: int) -> None:
        super().__init__()
        self.rows = nn.Parameter(torch.rand(grid, dim // 2))
        self.cols = nn.Parameter(torch.rand(grid, dim - dim // 2))

    def forward(self) -> torch.Tensor:
        g = self.rows.shape[0]
        cols = self.cols.unsqueeze(0).expand(g, -1, -1)  # [g(row),g(col),C/2]
        rows = self.rows.unsqueeze(1).expand(-1, g, -1)  # [g(row),g(col),C/2]
        return torch.cat([cols, rows], dim=-1).flatten(0, 1)  # [N,C]


class Reconstruction(nn.Module):
    """Feature tokens [B, N, C_in] -> reconstructed tokens [B, N, C_in] (jitter on the input in train mode)."""

    def __init__(
        self,
        in_dim: int,
        grid: int,
        dim: int,
        heads: int,
        encoder_layers: int,
        decoder_layers: int,
        ffn: int,
        dropout: float,
        neighbour_size: int,
        mask_in: tuple[bool, bool, bool],
        jitter_scale: float,
        jitter_prob: float,
        shared_init: bool = False,
    ) -> None:
        super().__init__()
        self.mask_in, self.jitter_scale, self.jitter_prob = tuple(mask_in), jitter_scale, jitter_prob
        self.input_proj, self.output_proj = nn.Linear(in_dim, dim), nn.Linear(dim, in_dim)
        self.position = LearnedPosition(grid, dim)
        self.encoder = nn.ModuleList(EncoderLayer(dim, heads, ffn, dropout) for _ in range(encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(grid * grid, dim, heads, ffn, dropout) for _ in range(decoder_layers))
        self.decoder_norm = nn.LayerNorm(dim)
        # derived from the config: rebuilt on load, kept out of checkpoints
        self.register_buffer("bias", attention_bias(grid, neighbour_size), persistent=False)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        if shared_init:
            self._share_initial_values()

    @torch.no_grad()
    def _share_initial_values(self) -> None:
        """Give every layer the first layer's attention in-projections and learned query (see module docstring)."""
        for layers, names in ((self.encoder, ("attn",)), (self.decoder, ("attn_encoder", "attn_previous"))):
            for layer in layers[1:]:
                for name in names:
                    getattr(layer, name).in_proj.weight.copy_(getattr(layers[0], name).in_proj.weight)
        for layer in self.decoder[1:]:
            layer.query.copy_(self.decoder[0].query)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.training:
            tokens = feature_jitter(tokens, self.jitter_scale, self.jitter_prob)
        x = self.input_proj(tokens)  # [B,N,dim]
        pos = self.position().to(x.dtype)  # [N,dim]
        enc_bias, dec1_bias, dec2_bias = (self.bias if use else None for use in self.mask_in)
        for layer in self.encoder:
            x = layer(x, pos, enc_bias)
        memory, out = x, x
        for layer in self.decoder:
            out = layer(out, memory, pos, dec1_bias, dec2_bias)
        return self.output_proj(self.decoder_norm(out))  # [B,N,C_in]
