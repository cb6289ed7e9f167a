"""Training: listwise softmax over each candidate list, seeded and deterministic, progress per epoch with
loss and validation HR@1/3/5 and NDCG@10. Presets: `tiny` (the test fixture, seconds), `cpu` (ml-100k on two
cores within minutes), `gpu` (a larger model for a CUDA host).

Distillation (issue 7) adds to the outcome-only cases the teacher's labelled trajectories (labelled.py):
stage 1 learns from the observed outcome (hard target) and the teacher's final ranking (soft listwise target),
stage 2 (grpo.py, `stage2=True`) fine-tunes the stage-1 model with GRPO and the tiered rank reward. Ablations:
`stage2=False`, `teacher_weight=0` (outcomes only), `evidence=False` (no CST evidence in the input)."""
from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cases import read_cases
from .data import encode_records
from .lists import NEG, batch_tensors, evaluate, list_metrics, ranks, sample_candidates  # noqa: F401 (re-exported)
from .model import ModelConfig, StarModel
from .prompt import CaseEncoder, load_prompt_spec, render_candidate_segments, render_user_segments
from .tokenizer import segment_ids, special_id, train_tokenizer


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

    # --- distillation (issue 7): stage 1 targets -------------------------------------------------------------
    #: labelled teacher trajectories (a JSON-lines file or a dataset directory, labelled.py); None: outcome cases only
    trajectories: str | None = None
    #: stage 1: weight of the hard target, the observed next item (softmax cross-entropy over the list)
    hard_weight: float = 1.0
    #: stage 1: weight of the teacher's soft listwise target, KL(softmax(rank score / temperature) || model);
    #: 0 = outcomes only (the ablation: teacher lists keep their observed item, lists without one are dropped)
    teacher_weight: float = 1.0
    #: temperature of the teacher target: rank scores are -(rank - 1), so 2.0 gives the first five of a
    #: 20-candidate list 0.39, 0.24, 0.14, 0.09, 0.05
    teacher_temperature: float = 2.0
    #: teacher lists whose observed item is not a candidate (or whose outcome expired): "teacher" (teacher
    #: target only) or "drop"
    absent_outcome: str = "teacher"
    #: keep only trajectories that ranked the observed item within this rank (None: as the export kept them)
    max_teacher_rank: int | None = None
    #: CST evidence (sentences and features) in the input; False = the no-evidence ablation (strip_evidence)
    evidence: bool = True

    # --- stage 2: GRPO (grpo.py) --------------------------------------------------------------------------------
    stage2: bool = False
    grpo_epochs: int = 1
    #: sampled rankings per list
    grpo_group: int = 8
    #: positions of a sampled ranking that are scored (the reward reads the top 5)
    grpo_top: int = 5
    #: candidates per list in stage 2: the observed item and up to this many minus one others
    grpo_candidates: int = 20
    grpo_batch_lists: int = 16
    grpo_lr: float = 1e-4
    #: coefficient of the KL penalty to the frozen stage-1 model
    grpo_kl: float = 0.05
    #: "softmax" (exact KL of the first-choice distributions) or "pl_k3" (sampled top-K PL estimate)
    grpo_kl_estimator: str = "softmax"
    #: stage 2 on the latest this many training lists only (None: all)
    grpo_max_cases: int | None = None


PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(vocab_size=500, max_length=80, dim=32, layers=1, heads=2, ff=64, epochs=3, batch_lists=16, lr=3e-3, parity_cases=4),
    "cpu": TrainConfig(),
    "gpu": TrainConfig(vocab_size=8000, max_length=160, dim=256, layers=4, heads=8, ff=1024, epochs=10, batch_lists=64,
                       train_candidates=20, lr=5e-4, warmup_steps=500, device="cuda", threads=8),
}


def seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


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
    #: after stage 2: the stage-1 model's metrics, for the ablation table
    stage1_validation: dict[str, float] | None = None
    stage1_test: dict[str, float] | None = None
    #: after stage 2: a copy of the stage-1 model (the ablation "without stage 2" from the same run)
    stage1_model: StarModel | None = None
    stage2_history: list[dict[str, Any]] = field(default_factory=list)
    #: what the trajectories gave (labelled.to_records counts)
    trajectory_stats: dict[str, int] | None = None


def train(
    cases_file: Path | str | None,
    cfg: TrainConfig,
    log: Callable[[str], None] = print,
    evaluate_test: bool = True,
) -> TrainResult:
    """Stage 1 (and stage 2 with `cfg.stage2`) on the train split of `cases_file` and/or `cfg.trajectories`.

    Validation: the latest `validation_share` (by time) of the case file's train split; without a case file,
    of the teacher lists whose observed item is a candidate. Test: the case file's test split."""
    started = time.time()
    seed_everything(cfg.seed, cfg.threads)
    spec = load_prompt_spec()
    if cases_file is None and not cfg.trajectories:
        raise ValueError("nothing to train on: give a case file, trajectories, or both")
    records = read_cases(cases_file, "train") if cases_file is not None else []
    if cfg.max_train_cases is not None and len(records) > cfg.max_train_cases:
        records = records[-cfg.max_train_cases :]  # the latest ones: closest to the test period
    teacher_records, stats = _teacher_records(cfg, log)
    if not cfg.evidence:
        records = [strip_evidence_record(r) for r in records]
        teacher_records = [strip_evidence_record(r) for r in teacher_records]
    if records:
        if len(records) < 10:
            raise ValueError(f"{cases_file}: only {len(records)} train cases")
        n_val = max(1, int(len(records) * cfg.validation_share))
        train_records, val_records = records[:-n_val] + teacher_records, records[-n_val:]
    else:
        labelled = [i for i, r in enumerate(teacher_records) if r["label"] >= 0]
        if len(labelled) < 2:
            raise ValueError(
                f"{cfg.trajectories}: {len(labelled)} teacher lists with the observed item among the candidates; need 2 or more")
        held = set(labelled[-max(1, int(len(labelled) * cfg.validation_share)) :])
        train_records = [r for i, r in enumerate(teacher_records) if i not in held]
        val_records = [r for i, r in enumerate(teacher_records) if i in held]
    log(f"cases: {len(train_records)} train ({len(teacher_records)} from the teacher), {len(val_records)} validation "
        f"(latest {cfg.validation_share:.0%} of {'the case file' if records else 'the labelled teacher lists'})")

    if cfg.tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(cfg.tokenizer)
    else:
        tokenizer = train_tokenizer(_segments(spec, train_records), cfg.vocab_size)
    encoder = CaseEncoder(spec, segment_ids(tokenizer), special_id(tokenizer, "[CLS]"), special_id(tokenizer, "[SEP]"), cfg.max_length)
    log(f"tokenizer: WordPiece, {tokenizer.get_vocab_size()} tokens ({time.time() - started:.1f}s)")
    train_data = encode_records(train_records, encoder, progress=True)
    val_data = encode_records(val_records, encoder)
    lengths = train_data.lengths[train_data.mask]
    at_max = 100 * (lengths >= cfg.max_length).mean()
    log(f"encoded: mean {lengths.mean():.1f} tokens per candidate, {at_max:.1f}% at max_length {cfg.max_length} "
        f"({time.time() - started:.1f}s)")

    from .tokenizer import SPECIAL_TOKENS

    if [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] != list(range(len(SPECIAL_TOKENS))):
        raise ValueError("the tokenizer's special tokens must have ids 0..7 in SPECIAL_TOKENS order (train_tokenizer does that)")
    mcfg = ModelConfig(tokenizer.get_vocab_size(), cfg.max_length, spec.feature_width, cfg.dim, cfg.layers, cfg.heads, cfg.ff,
                       cfg.dropout, cfg.bag)
    model = StarModel(mcfg).to(cfg.device)
    flat = torch.from_numpy(train_data.features[train_data.mask])
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
    result = TrainResult(model, tokenizer, encoder, cfg, trajectory_stats=stats)
    best_state, best_avg = None, -1.0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(len(train_data))
        loss_sum, seen, t0 = 0.0, 0, time.time()
        for step, at in enumerate(range(0, len(order), cfg.batch_lists)):
            rows = order[at : at + cfg.batch_lists]
            cand, target, valid = sample_candidates(rng, train_data, rows, k)
            ids, mask, feats, b, c = batch_tensors(train_data, rows, cand, cfg.device)
            scores = model(ids, mask, feats).reshape(b, c)
            teacher = np.take_along_axis(train_data.teacher[rows], cand, axis=1)
            loss = stage1_loss(
                scores,
                torch.from_numpy(target).to(cfg.device),
                valid=torch.from_numpy(valid).to(cfg.device),
                teacher=torch.from_numpy(teacher).to(cfg.device),
                has_teacher=torch.from_numpy(train_data.has_teacher[rows]).to(cfg.device),
                hard_weight=cfg.hard_weight,
                teacher_weight=cfg.teacher_weight,
                temperature=cfg.teacher_temperature,
            )
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
                log(f"  epoch {epoch} step {step + 1}/{steps_per_epoch} loss {loss_sum / seen:.4f} "
                    f"({rate:.0f} lists/s, epoch ETA {eta:.0f}s)")
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

    test_records: list[dict[str, Any]] = []
    test_data = None
    if evaluate_test and cases_file is not None:
        test_records = read_cases(cases_file, "test")
        if not cfg.evidence:
            test_records = [strip_evidence_record(r) for r in test_records]
        if test_records:
            test_data = encode_records(test_records, encoder)
            result.test = evaluate(model, test_data, cfg.device)
            _log_test(log, "test" if not cfg.stage2 else "stage 1 test", len(test_records), result.test)
    if cfg.stage2:
        from .grpo import run_stage2

        result.stage1_validation, result.stage1_test = result.validation, result.test
        result.stage1_model = copy.deepcopy(model)
        result.stage2_history = run_stage2(model, train_data, val_data, cfg, log)
        result.validation = evaluate(model, val_data, cfg.device)
        if test_data is not None:
            result.test = evaluate(model, test_data, cfg.device)
            _log_test(log, "stage 2 test", len(test_records), result.test)
    result.parity_records = [_parity_record(r) for r in (test_records or val_records)[: cfg.parity_cases]]
    result.seconds = time.time() - started
    return result


def stage1_loss(
    scores: torch.Tensor,
    target: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    teacher: torch.Tensor | None = None,
    has_teacher: torch.Tensor | None = None,
    hard_weight: float = 1.0,
    teacher_weight: float = 1.0,
    temperature: float = 2.0,
) -> torch.Tensor:
    """Stage-1 loss of a batch of lists, averaged over the lists:

    hard_weight * CE(softmax(scores), observed item)            for lists with the observed item (target >= 0)
    + teacher_weight * KL(softmax(teacher / temperature) || softmax(scores))   for lists with a teacher target

    [B, C] scores and teacher rank scores, [B] target (-1: none), [B, C] valid columns, [B] has_teacher."""
    b = scores.shape[0]
    use_teacher = teacher is not None and has_teacher is not None and teacher_weight != 0 and bool(has_teacher.any())
    invalid = None if valid is None or bool(valid.all()) else ~valid  # None: every column is a candidate
    if not use_teacher and invalid is None and bool((target >= 0).all()):
        # the outcome-only loss exactly as before distillation, so those runs reproduce bit for bit
        return hard_weight * torch.nn.functional.cross_entropy(scores, target)
    s = scores if invalid is None else scores.masked_fill(invalid, NEG)
    logp = torch.log_softmax(s, -1)
    loss = scores.new_zeros(())
    hard = target >= 0
    if hard_weight != 0 and bool(hard.any()):
        loss = loss + hard_weight * -logp[hard].gather(1, target[hard][:, None]).sum()
    if use_teacher and teacher is not None and has_teacher is not None:  # (the None checks narrow the types)
        t = teacher / temperature
        if invalid is not None:
            t = t.masked_fill(invalid, NEG)
        logq = torch.log_softmax(t, -1)
        kl = logq.exp() * (logq - logp)
        if invalid is not None:
            kl = torch.where(invalid, torch.zeros_like(kl), kl)
        loss = loss + teacher_weight * kl.sum(-1)[has_teacher].sum()
    return loss / b


def strip_evidence(case: dict[str, Any]) -> dict[str, Any]:
    """The case without CST evidence (the no-evidence ablation): no sentences, every CST feature 0. Title,
    categories and the user context stay. A case transform, not a renderer option: the prompt spec renders
    such a case as it is (see the README on serving such a model)."""
    return {**case, "candidates": [{**c, "sentences": [], "features": {k: 0 for k in c["features"]}} for c in case["candidates"]]}


def strip_evidence_record(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "case": strip_evidence(record["case"])}


def _teacher_records(cfg: TrainConfig, log: Callable[[str], None]) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    if not cfg.trajectories:
        return [], None
    from .labelled import read_labelled, to_records

    records, stats = to_records(
        read_labelled(cfg.trajectories),
        use_teacher=cfg.teacher_weight != 0,
        absent_outcome=cfg.absent_outcome,
        max_teacher_rank=cfg.max_teacher_rank,
    )
    log(f"trajectories: {stats.get('read', 0)} read, {stats.get('lists', 0)} lists ({stats.get('with_teacher', 0)} with a teacher "
        f"target, {stats.get('with_outcome', 0)} with the observed item, {stats.get('teacher_only', 0)} teacher target only), "
        f"skipped: {stats.get('skipped_failed', 0)} failed, {stats.get('skipped_filter', 0)} by max_teacher_rank, "
        f"{stats.get('skipped_no_target', 0)} without a target")
    return records, stats


def _parity_record(record: dict[str, Any]) -> dict[str, Any]:
    from .labelled import scoring_case

    return {**record, "case": scoring_case(record["case"])}


def _log_test(log: Callable[[str], None], what: str, n: int, t: dict[str, float]) -> None:
    log(f"{what} ({n} cases): HR@1 {t['hr1']:.3f} HR@3 {t['hr3']:.3f} HR@5 {t['hr5']:.3f} avg {t['avg']:.1f} NDCG@10 {t['ndcg10']:.3f}")


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
