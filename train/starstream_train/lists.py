"""Candidate lists in batches: choosing the columns a training step scores, turning them into model inputs,
and ranking metrics. Shared by stage 1 (train.py) and stage 2 (grpo.py)."""
from __future__ import annotations

import numpy as np
import torch

from .data import Encoded
from .model import StarModel

#: score given to padding columns: finite, so softmax, logsumexp and their gradients stay finite
NEG = -1e9


def ranks(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """0-based rank of the true item; ties count against it (pessimistic), as a scorer's ties would be random."""
    true = scores.gather(1, labels[:, None])
    return (scores > true).sum(1) + ((scores == true).sum(1) - 1) // 2


def list_metrics(rank: torch.Tensor) -> dict[str, float]:
    r = rank.double()
    out = {f"hr{k}": float((r < k).double().mean()) for k in (1, 3, 5)}
    out["avg"] = 100 * (out["hr1"] + out["hr3"] + out["hr5"]) / 3
    out["ndcg10"] = float(torch.where(r < 10, 1.0 / torch.log2(r + 2), torch.zeros_like(r)).mean())
    return out


def sample_candidates(rng: np.random.Generator, data: Encoded, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per list: the observed item (when it is a candidate) plus random other candidates, k in all when the
    list has that many, in random order. Returns columns [b, k] (0 in padding), the observed item's new
    column [b] (-1: none) and which columns are real [b, k]. For a complete labelled list this makes exactly
    the draws of the original outcome-only sampler, so such runs reproduce earlier ones."""
    b = len(rows)
    cand = np.zeros((b, k), dtype=np.int64)
    valid = np.zeros((b, k), dtype=bool)
    target = np.full(b, -1, dtype=np.int64)
    for i, row in enumerate(rows):
        label = int(data.labels[row])
        real = np.flatnonzero(data.mask[row])
        if label >= 0:
            others = real[real != label]
            chosen = np.concatenate([[label], rng.choice(others, min(k - 1, len(others)), replace=False)])
        else:
            chosen = rng.choice(real, min(k, len(real)), replace=False)
        perm = rng.permutation(len(chosen))
        cand[i, : len(chosen)] = chosen[perm]
        valid[i, : len(chosen)] = True
        if label >= 0:
            target[i] = int(np.argmax(perm == 0))
    return cand, target, valid


def batch_tensors(data: Encoded, rows: np.ndarray, cand: np.ndarray | None, device: str):
    """Tensors for lists `rows` (and, per list, candidate columns `cand`), trimmed to the longest row."""
    if cand is None:
        ids, lengths, feats = data.ids[rows], data.lengths[rows], data.features[rows]
    else:
        ids = np.take_along_axis(data.ids[rows], cand[:, :, None], axis=1)
        lengths = np.take_along_axis(data.lengths[rows], cand, axis=1)
        feats = np.take_along_axis(data.features[rows], cand[:, :, None], axis=1)
    b, c = lengths.shape
    n = int(lengths.max())
    ids = torch.from_numpy(ids[:, :, :n].reshape(b * c, n).astype(np.int64)).to(device)
    mask = (torch.arange(n)[None, :] < torch.from_numpy(lengths.reshape(-1, 1))).long().to(device)
    feats = torch.from_numpy(feats.reshape(b * c, -1)).to(device)
    return ids, mask, feats, b, c


@torch.no_grad()
def evaluate(model: StarModel, data: Encoded, device: str, batch_lists: int = 64) -> dict[str, float]:
    """HR@1/3/5, their average (×100) and NDCG@10 over the lists whose observed item is a candidate."""
    model.eval()
    labelled = np.flatnonzero(data.labels >= 0)
    if len(labelled) == 0:
        raise ValueError("no list with the observed item among its candidates to evaluate on")
    all_ranks = []
    for at in range(0, len(labelled), batch_lists):
        rows = labelled[at : at + batch_lists]
        ids, mask, feats, b, c = batch_tensors(data, rows, None, device)
        scores = model(ids, mask, feats).reshape(b, c).float().cpu()
        real = torch.from_numpy(data.mask[rows])
        if not bool(real.all()):
            scores = scores.masked_fill(~real, NEG)
        all_ranks.append(ranks(scores, torch.from_numpy(data.labels[rows])))
    return list_metrics(torch.cat(all_ranks))
