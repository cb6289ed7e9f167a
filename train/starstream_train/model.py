"""STAR's compact cross-encoder: one transformer over the rendered case text of a (user, candidate) pair,
plus the CST features as a numeric side input, giving one score per candidate.

Written with plain Linear/LayerNorm/matmul/softmax ops (no fused attention kernels) so that the ONNX export
is simple and identical to PyTorch's math; input ids and mask are [batch, length] int64, features
[batch, width] float32, output [batch] float32 (higher is better).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    max_length: int
    feature_width: int
    dim: int = 64
    layers: int = 1
    heads: int = 4
    ff: int = 128
    dropout: float = 0.1
    #: a bag-of-tokens channel next to the transformer: mean embeddings of the candidate line's tokens and of
    #: the history lines' tokens, their dot product and a candidate bias. It gives the compact model a direct
    #: item-to-history affinity (titles act as item identities), which one small attention layer learns slowly.
    bag: int = 0


# Ids fixed by the canonical tokenizer (tokenizer.SPECIAL_TOKENS order).
CAND_ID, EV_ID, USER_ID, HIST_ID, SEP_ID = 4, 5, 6, 7, 3


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        # A Python float fixed at construction: computed from a traced shape in forward() it became a constant
        # in the ONNX trace anyway, with a TracerWarning on every export.
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, ff)
        self.ff2 = nn.Linear(ff, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape[0], x.shape[1], x.shape[2]
        h = self.heads
        qkv = self.qkv(self.ln1(x)).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.matmul(q, k.transpose(-1, -2)) * self.scale + bias
        att = self.drop(torch.softmax(att, dim=-1))
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, n, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.ff2(torch.nn.functional.gelu(self.ff1(self.ln2(x)))))


class StarModel(nn.Module):
    # buffers (register_buffer), declared so that type checkers see tensors, not `Tensor | Module`
    feat_mean: torch.Tensor
    feat_std: torch.Tensor

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.tok = nn.Embedding(cfg.vocab_size, d)
        self.pos = nn.Embedding(cfg.max_length, d)
        self.blocks = nn.ModuleList([Block(d, cfg.heads, cfg.ff, cfg.dropout) for _ in range(cfg.layers)])
        self.ln = nn.LayerNorm(d)
        w = max(cfg.feature_width, 1)
        # Feature standardisation is part of the model (fitted on the training cases), so serving feeds raw rows.
        self.register_buffer("feat_mean", torch.zeros(w))
        self.register_buffer("feat_std", torch.ones(w))
        self.feat = nn.Sequential(nn.Linear(w, d), nn.GELU(), nn.Linear(d, d), nn.GELU())
        self.feat_linear = nn.Linear(w, 1)
        self.head = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, 1))
        if cfg.bag:
            self.bag_cand = nn.Embedding(cfg.vocab_size, cfg.bag)
            self.bag_hist = nn.Embedding(cfg.vocab_size, cfg.bag)
            self.bag_bias = nn.Linear(cfg.bag, 1)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device)
        x = self.tok(input_ids) + self.pos(positions).unsqueeze(0)
        maskf = attention_mask.to(x.dtype)
        bias = ((1.0 - maskf) * -1e4).unsqueeze(1).unsqueeze(1)
        for block in self.blocks:
            x = block(x, bias)
        x = self.ln(x)
        mean = (x * maskf.unsqueeze(-1)).sum(1) / maskf.sum(1, keepdim=True).clamp(min=1.0)
        text = x[:, 0] + mean
        f = (features - self.feat_mean) / self.feat_std
        score = self.head(torch.cat([text, self.feat(f)], dim=-1)).squeeze(-1) + self.feat_linear(f).squeeze(-1)
        if self.cfg.bag:
            score = score + self._bag(input_ids, attention_mask)
        return score

    def _bag(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        live = mask > 0
        after_marker = torch.cumsum(((ids == EV_ID) | (ids == USER_ID) | (ids == HIST_ID)).long(), dim=1) > 0
        cand = live & ~after_marker & (ids > CAND_ID)
        hist = live & (torch.cumsum((ids == HIST_ID).long(), dim=1) > 0) & (ids != HIST_ID) & (ids != SEP_ID)
        cf, hf = cand.to(torch.float32).unsqueeze(-1), hist.to(torch.float32).unsqueeze(-1)
        c = (self.bag_cand(ids) * cf).sum(1) / cf.sum(1).clamp(min=1.0)
        h = (self.bag_hist(ids) * hf).sum(1) / hf.sum(1).clamp(min=1.0)
        return (c * h).sum(-1) + self.bag_bias(c).squeeze(-1)
