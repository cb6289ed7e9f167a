"""Stage 2: GRPO on a Plackett–Luce ranking policy, with the paper's tiered rank reward.

The policy. STAR scores every candidate of a list; the scores s define a Plackett–Luce (PL) distribution over
rankings: the first item is drawn with probability softmax(s), the next from the rest with the softmax of
theirs, and so on. Sampling is Gumbel-top-k: add independent Gumbel(0, 1) noise to the scores and sort; the
order of the perturbed scores is an exact PL sample, and its first k positions an exact sample of the PL
top-k prefix.

One step, per list with the observed item among its candidates:

1. sample a group of G rankings (`grpo_group`, 8) from the current policy, truncated to the top K
   (`grpo_top`, 5);
2. reward each with the paper's tiered reward of the observed item's position: 1 if first, 2/3 within the
   top 3, 1/3 within the top 5, else 0;
3. group-relative advantage A = (r - mean_group(r)) / (std_group(r) + eps), population std; a group whose
   rewards are all equal (every sample put the item first, or none reached the top 5) gets A = 0 and so
   contributes no gradient;
4. loss = -mean(A * log P_PL(sampled top-K prefix)) + beta * KL(policy || stage-1 model).

Choices, and why:

- **Truncated log-probability.** log P of the top-K prefix, sum over j < K of s[pi_j] - logsumexp(s over the
  items not yet placed). The reward reads only the first 5 positions, so the log-probability of the rest of
  the ranking, given the prefix, has an expected policy gradient of zero: it only adds variance.
- **On-policy, no ratio clipping.** Every step samples fresh groups from the current weights and takes one
  gradient step on them, so PPO's importance ratio is 1 and its clipped surrogate has the plain policy
  gradient's gradient; clipping would matter only with several optimisation passes over one sample.
- **KL to the frozen stage-1 model, exact over first choices** (`grpo_kl_estimator="softmax"`, default):
  KL(softmax(s) || softmax(s_ref)) over the list's candidates, computed exactly from both score vectors. A PL
  distribution is determined by its scores up to a shift, and so is its first-choice softmax, so this KL is
  zero exactly when the two ranking policies are equal; it has no sampling noise and costs one softmax. The
  alternative `"pl_k3"` is the estimator GRPO (DeepSeekMath) uses, r - log r - 1 with r = P_ref / P_policy of
  each sampled top-K prefix: unbiased for the KL between the two top-K prefix distributions, but noisy.
- Normalisation: the policy term is the mean over all lists × samples of the batch (zero-advantage groups
  count in the denominator), so the step size does not grow when most groups are uninformative.
- Dropout is off during stage 2 (the model is in eval mode), so the policy that samples is the one whose
  log-probabilities are differentiated.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .data import Encoded
from .lists import NEG, batch_tensors, evaluate, sample_candidates
from .model import StarModel

#: the paper's tiered reward: (positions below which, reward) checked in order
REWARD_TIERS = ((1, 1.0), (3, 2.0 / 3.0), (5, 1.0 / 3.0))


def tiered_reward(positions: torch.Tensor) -> torch.Tensor:
    """Reward per sampled ranking from the 0-based position of the observed item in it (-1: not placed)."""
    r = torch.zeros(positions.shape, dtype=torch.float32, device=positions.device)
    placed = positions >= 0
    for bound, value in reversed(REWARD_TIERS):
        r = torch.where(placed & (positions < bound), torch.tensor(value, dtype=torch.float32, device=positions.device), r)
    return r


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(r - mean) / (std + eps) within each group (last axis, population std); 0 for a group with no variance."""
    mean = rewards.mean(-1, keepdim=True)
    std = rewards.std(-1, unbiased=False, keepdim=True)
    spread = (rewards.max(-1, keepdim=True).values - rewards.min(-1, keepdim=True).values) > 0
    return torch.where(spread, (rewards - mean) / (std + eps), torch.zeros_like(rewards))


def gumbel_topk(scores: torch.Tensor, group: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`group` Plackett–Luce samples of the top-k prefix per list: [B, C] scores -> [B, group, k] columns."""
    b, c = scores.shape
    u = torch.rand((b, group, c), generator=generator, dtype=torch.float64).clamp_(1e-300, 1.0 - 1e-16)
    perturbed = scores.detach().to(torch.float64).cpu().unsqueeze(1) - torch.log(-torch.log(u))
    return perturbed.topk(k, dim=-1).indices.to(scores.device)


def pl_log_prob(scores: torch.Tensor, perms: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """log P_PL of each ranking prefix: [B, C] scores, [B, G, K] columns -> [B, G]. `valid` [B, C] marks real
    candidates: padding is never drawn, and positions past a list's real candidates count as certain."""
    b, c = scores.shape
    g, k = perms.shape[1], perms.shape[2]
    s = scores if valid is None else scores.masked_fill(~valid, NEG)
    s = s.unsqueeze(1).expand(b, g, c)
    n_real = torch.full((b,), c, device=scores.device) if valid is None else valid.sum(-1)
    taken = torch.zeros((b, g, c), dtype=torch.bool, device=scores.device)
    total = torch.zeros((b, g), dtype=s.dtype, device=scores.device)
    for j in range(k):
        col = perms[:, :, j : j + 1]
        term = s.gather(-1, col).squeeze(-1) - torch.logsumexp(s.masked_fill(taken, NEG), dim=-1)
        total = total + torch.where((j < n_real).unsqueeze(1), term, torch.zeros_like(term))
        taken = taken.scatter(-1, col, True)
    return total


def softmax_kl(scores: torch.Tensor, ref_scores: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """KL(softmax(scores) || softmax(ref_scores)) over each list's real candidates: [B, C] -> [B]."""
    if valid is not None:
        scores, ref_scores = scores.masked_fill(~valid, NEG), ref_scores.masked_fill(~valid, NEG)
    logp = torch.log_softmax(scores, -1)
    logq = torch.log_softmax(ref_scores, -1)
    terms = logp.exp() * (logp - logq)
    if valid is not None:
        terms = torch.where(valid, terms, torch.zeros_like(terms))
    return terms.sum(-1)


def pl_k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 estimate of KL(policy || ref) per sampled prefix: r - log r - 1, r = P_ref / P_policy."""
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1.0


def positions_of(perms: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0-based position of column `target` [B] in each ranking prefix [B, G, K]; -1 when not in it."""
    hit = perms == target.view(-1, 1, 1)
    pos = hit.to(torch.int64).argmax(-1)
    return torch.where(hit.any(-1), pos, torch.full_like(pos, -1))


def grpo_loss(
    scores: torch.Tensor,
    ref_scores: torch.Tensor,
    target: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    group: int = 8,
    top: int = 5,
    kl_coef: float = 0.05,
    kl_estimator: str = "softmax",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The stage-2 loss of one batch of lists ([B, C] policy and reference scores, [B] observed columns)."""
    if valid is not None:
        scores = scores.masked_fill(~valid, NEG)
        ref_scores = ref_scores.masked_fill(~valid, NEG)
    k = min(top, scores.shape[1])
    perms = gumbel_topk(scores, group, k, generator)
    rewards = tiered_reward(positions_of(perms, target))
    adv = group_advantages(rewards)
    logp = pl_log_prob(scores, perms, valid)
    policy = -(adv * logp).mean()
    if kl_estimator == "softmax":
        kl = softmax_kl(scores, ref_scores, valid).mean()
    elif kl_estimator == "pl_k3":
        kl = pl_k3_kl(logp, pl_log_prob(ref_scores, perms, valid)).mean()
    else:
        raise ValueError(f"grpo_kl_estimator must be softmax or pl_k3, not {kl_estimator!r}")
    loss = policy + kl_coef * kl
    flat = (rewards.max(-1).values == rewards.min(-1).values).float().mean()
    return loss, {"policy": float(policy.detach()), "kl": float(kl.detach()), "reward": float(rewards.mean()),
                  "zero_variance": float(flat)}


def run_stage2(
    model: StarModel,
    train_data: Encoded,
    val_data: Encoded,
    cfg: Any,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """GRPO from the stage-1 weights in `model` (updated in place to the best epoch by validation average HR).
    Uses the training lists whose observed item is a candidate; returns one history row per epoch."""
    device = cfg.device
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    rows_all = np.flatnonzero(train_data.labels >= 0)
    if cfg.grpo_max_cases is not None:
        rows_all = rows_all[-cfg.grpo_max_cases :]
    if len(rows_all) == 0:
        raise ValueError("stage 2 needs lists whose observed item is among the candidates; there are none")
    rng = np.random.default_rng(cfg.seed + 1)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.grpo_lr, weight_decay=cfg.weight_decay)
    k = min(cfg.grpo_candidates, train_data.ids.shape[1])
    steps_per_epoch = math.ceil(len(rows_all) / cfg.grpo_batch_lists)
    log(f"stage 2 (GRPO): {len(rows_all)} lists, {k} candidates each, group {cfg.grpo_group}, top {cfg.grpo_top}, "
        f"KL {cfg.grpo_kl_estimator} x {cfg.grpo_kl}, lr {cfg.grpo_lr}")
    history: list[dict[str, Any]] = []
    best_state, best_avg = None, -1.0
    for epoch in range(1, cfg.grpo_epochs + 1):
        model.eval()  # no dropout: the sampling policy is the differentiated one
        order = rng.permutation(rows_all)
        sums = {"loss": 0.0, "policy": 0.0, "kl": 0.0, "reward": 0.0, "zero_variance": 0.0}
        seen, t0 = 0, time.time()
        for step, at in enumerate(range(0, len(order), cfg.grpo_batch_lists)):
            rows = order[at : at + cfg.grpo_batch_lists]
            cand, target, valid = sample_candidates(rng, train_data, rows, k)
            ids, mask, feats, b, c = batch_tensors(train_data, rows, cand, device)
            valid_t = torch.from_numpy(valid).to(device)
            scores = model(ids, mask, feats).reshape(b, c)
            with torch.no_grad():
                ref_scores = ref(ids, mask, feats).reshape(b, c)
            loss, stats = grpo_loss(scores, ref_scores, torch.from_numpy(target).to(device), valid=valid_t,
                                    group=cfg.grpo_group, top=cfg.grpo_top, kl_coef=cfg.grpo_kl,
                                    kl_estimator=cfg.grpo_kl_estimator, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sums["loss"] += float(loss.detach()) * b
            for key in ("policy", "kl", "reward", "zero_variance"):
                sums[key] += stats[key] * b
            seen += b
            if (step + 1) % 100 == 0:
                log(f"  stage 2 epoch {epoch} step {step + 1}/{steps_per_epoch} reward {sums['reward'] / seen:.3f} "
                    f"KL {sums['kl'] / seen:.4f} ({seen / (time.time() - t0):.0f} lists/s)")
        val = evaluate(model, val_data, device)
        row = {"epoch": epoch, **{k2: v / max(seen, 1) for k2, v in sums.items()}, "seconds": time.time() - t0,
               **{f"val_{k2}": v for k2, v in val.items()}}
        history.append(row)
        log(f"stage 2 epoch {epoch}/{cfg.grpo_epochs}: reward {row['reward']:.3f}, KL {row['kl']:.4f}, "
            f"zero-variance groups {100 * row['zero_variance']:.0f}%, validation HR@1 {val['hr1']:.3f} HR@3 {val['hr3']:.3f} "
            f"HR@5 {val['hr5']:.3f} avg {val['avg']:.1f} ({row['seconds']:.0f}s)")
        if val["avg"] > best_avg:
            best_avg = val["avg"]
            best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
