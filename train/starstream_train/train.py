"""Training: listwise softmax over each candidate list, seeded and deterministic, progress per epoch with
loss and validation HR@1/3/5 and NDCG@10. Presets: `tiny` (the test fixture, seconds), `cpu` (ml-100k on two
cores within minutes), `gpu` (a larger model for a CUDA host)."""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .cases import read_cases
from .data import Encoded, encode_records
from .model import ModelConfig, StarModel
from .prompt import CaseEncoder, load_cst_version, load_prompt_spec, render_candidate_segments, render_user_segments
from .tokenizer import segment_ids, train_tokenizer


@dataclass(frozen=True)
class TrainConfig:
    vocab_size: int = 3000
    max_length: int = 96
    dim: int = 64
    layers: int = 1
    heads: int = 4
    ff: int = 128
    dropout: float = 0.1
    #: width of the bag-of-tokens channel (model.ModelConfig.bag); 0 = off
    bag: int = 0
    epochs: int = 3
    batch_lists: int = 32
    #: candidates per training list: the true item and this many minus one of its negatives (resampled per
    #: batch); validation and test always score the whole list.
    train_candidates: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    max_train_cases: int | None = None
    validation_share: float = 0.1
    threads: int = 2
    device: str = "cpu"
    seed: int = 7
    parity_cases: int = 6
    #: reuse this tokenizer.json instead of training one. Everything else is bit-for-bit reproducible from the
    #: seed; the `tokenizers` WordPiece trainer breaks ties between equally frequent merges in hash-map order,
    #: so on a small corpus the learnt token set can differ between runs (ids are canonicalised either way).
    tokenizer: str | None = None


PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(vocab_size=500, max_length=80, dim=32, layers=1, heads=2, ff=64, epochs=3, batch_lists=16, lr=3e-3, parity_cases=4),
    "cpu": TrainConfig(),
    "gpu": TrainConfig(vocab_size=8000, max_length=160, dim=256, layers=4, heads=8, ff=1024, epochs=10, batch_lists=64, train_candidates=20, lr=5e-4, warmup_steps=500, device="cuda", threads=8),
}


def seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


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
    model.eval()
    all_ranks = []
    for at in range(0, len(data), batch_lists):
        rows = np.arange(at, min(at + batch_lists, len(data)))
        ids, mask, feats, b, c = batch_tensors(data, rows, None, device)
        scores = model(ids, mask, feats).reshape(b, c).float().cpu()
        all_ranks.append(ranks(scores, torch.from_numpy(data.labels[rows])))
    return list_metrics(torch.cat(all_ranks))


@dataclass
class TrainResult:
    model: StarModel
    tokenizer: Any
    encoder: CaseEncoder
    config: TrainConfig
    history: list[dict[str, Any]] = field(default_factory=list)
    validation: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] | None = None
    seconds: float = 0.0
    parity_records: list[dict[str, Any]] = field(default_factory=list)


def train(
    cases_file: Path | str,
    cfg: TrainConfig,
    log: Callable[[str], None] = print,
    evaluate_test: bool = True,
) -> TrainResult:
    started = time.time()
    seed_everything(cfg.seed, cfg.threads)
    spec = load_prompt_spec()
    records = read_cases(cases_file, "train")
    if cfg.max_train_cases is not None and len(records) > cfg.max_train_cases:
        records = records[-cfg.max_train_cases :]  # the latest ones: closest to the test period
    if len(records) < 10:
        raise ValueError(f"{cases_file}: only {len(records)} train cases")
    n_val = max(1, int(len(records) * cfg.validation_share))
    train_records, val_records = records[:-n_val], records[-n_val:]
    log(f"cases: {len(train_records)} train, {len(val_records)} validation (latest {cfg.validation_share:.0%} of train time)")

    if cfg.tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(cfg.tokenizer)
    else:
        tokenizer = train_tokenizer(_segments(spec, train_records), cfg.vocab_size)
    encoder = CaseEncoder(spec, segment_ids(tokenizer), tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]"), cfg.max_length)
    log(f"tokenizer: WordPiece, {tokenizer.get_vocab_size()} tokens ({time.time() - started:.1f}s)")
    train_data = encode_records(train_records, encoder, progress=True)
    val_data = encode_records(val_records, encoder)
    lengths = train_data.lengths
    log(f"encoded: mean {lengths.mean():.1f} tokens per candidate, {100 * (lengths >= cfg.max_length).mean():.1f}% at max_length {cfg.max_length} ({time.time() - started:.1f}s)")

    from .tokenizer import SPECIAL_TOKENS

    if [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] != list(range(len(SPECIAL_TOKENS))):
        raise ValueError("the tokenizer's special tokens must have ids 0..7 in SPECIAL_TOKENS order (train_tokenizer does that)")
    mcfg = ModelConfig(tokenizer.get_vocab_size(), cfg.max_length, spec.feature_width, cfg.dim, cfg.layers, cfg.heads, cfg.ff, cfg.dropout, cfg.bag)
    model = StarModel(mcfg).to(cfg.device)
    flat = torch.from_numpy(train_data.features.reshape(-1, spec.feature_width))
    model.feat_mean.copy_(flat.mean(0))
    model.feat_std.copy_(flat.std(0).clamp(min=1e-3))
    log(f"model: {sum(p.numel() for p in model.parameters()):,} parameters, dim {cfg.dim}, {cfg.layers} layer(s), {cfg.heads} heads")

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_data) / cfg.batch_lists)
    total_steps = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total_steps))))
    )
    rng = np.random.default_rng(cfg.seed)
    c_all = train_data.ids.shape[1]
    k = min(cfg.train_candidates, c_all)
    result = TrainResult(model, tokenizer, encoder, cfg)
    best_state, best_avg = None, -1.0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(len(train_data))
        loss_sum, seen, t0 = 0.0, 0, time.time()
        for step, at in enumerate(range(0, len(order), cfg.batch_lists)):
            rows = order[at : at + cfg.batch_lists]
            cand, target = _sample_candidates(rng, train_data.labels[rows], c_all, k)
            ids, mask, feats, b, c = batch_tensors(train_data, rows, cand, cfg.device)
            scores = model(ids, mask, feats).reshape(b, c)
            loss = torch.nn.functional.cross_entropy(scores, torch.from_numpy(target).to(cfg.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            loss_sum += loss.item() * b
            seen += b
            if (step + 1) % 100 == 0:
                rate = seen / (time.time() - t0)
                eta = (len(order) - seen) / max(rate, 1e-9)
                log(f"  epoch {epoch} step {step + 1}/{steps_per_epoch} loss {loss_sum / seen:.4f} ({rate:.0f} lists/s, epoch ETA {eta:.0f}s)")
        val = evaluate(model, val_data, cfg.device)
        row = {"epoch": epoch, "loss": loss_sum / max(seen, 1), "seconds": time.time() - t0, **{f"val_{k2}": v for k2, v in val.items()}}
        result.history.append(row)
        log(
            f"epoch {epoch}/{cfg.epochs}: loss {row['loss']:.4f}, validation HR@1 {val['hr1']:.3f} HR@3 {val['hr3']:.3f} "
            f"HR@5 {val['hr5']:.3f} avg {val['avg']:.1f} NDCG@10 {val['ndcg10']:.3f} ({row['seconds']:.0f}s)"
        )
        if val["avg"] > best_avg:
            best_avg = val["avg"]
            best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.validation = evaluate(model, val_data, cfg.device)
    if evaluate_test:
        test_records = read_cases(cases_file, "test")
        if test_records:
            result.test = evaluate(model, encode_records(test_records, encoder), cfg.device)
            t = result.test
            log(f"test ({len(test_records)} cases): HR@1 {t['hr1']:.3f} HR@3 {t['hr3']:.3f} HR@5 {t['hr5']:.3f} avg {t['avg']:.1f} NDCG@10 {t['ndcg10']:.3f}")
        result.parity_records = (test_records or val_records)[: cfg.parity_cases]
    else:
        result.parity_records = val_records[: cfg.parity_cases]
    result.seconds = time.time() - started
    return result


def _sample_candidates(rng: np.random.Generator, labels: np.ndarray, c_all: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per list: the true item plus k-1 random negatives, in random order; returns columns and new labels."""
    b = len(labels)
    cand = np.empty((b, k), dtype=np.int64)
    target = np.empty(b, dtype=np.int64)
    for i, label in enumerate(labels):
        negatives = np.delete(np.arange(c_all), label)
        chosen = np.concatenate([[label], rng.choice(negatives, k - 1, replace=False)])
        perm = rng.permutation(k)
        cand[i] = chosen[perm]
        target[i] = int(np.argmax(perm == 0))
    return cand, target


def _segments(spec, records):
    """Every segment text of the training cases, for the tokenizer's trainer."""
    for r in records:
        case = r["case"]
        u = render_user_segments(spec, case["user"])
        yield u.user
        yield from u.history
        for cand in case["candidates"]:
            c = render_candidate_segments(spec, cand)
            yield c.candidate
            yield from c.evidence


def config_from(preset: str, overrides: dict[str, Any]) -> TrainConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset}; one of {', '.join(PRESETS)}")
    return replace(PRESETS[preset], **overrides)


def describe(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)
