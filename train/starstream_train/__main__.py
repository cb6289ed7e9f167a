"""python -m starstream_train train   --cases FILE --out DIR [--preset tiny|cpu|gpu] [--set key=value ...]
python -m starstream_train distill --trajectories PATH [--cases FILE] --out DIR [--no-stage2] [--no-teacher] [--no-evidence]
python -m starstream_train chat-export --trajectories PATH --out FILE  (SFT data for a generative student)
python -m starstream_train vectors --model DIR --out FILE  (the shared prompt test vectors)

`train` and `distill` run the same trainer: `distill` turns stage 2 (GRPO) on by default and is the issue-7
entry point; `train` keeps its earlier defaults (stage 1 on outcome cases), and takes the same flags."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from .prompt import load_prompt_spec


def _parse_value(value: str):
    if value in ("none", "None", "null"):
        return None
    if value in ("true", "True"):
        return True
    if value in ("false", "False"):
        return False
    return json.loads(value) if value[:1] in "0123456789-[{" else value


def _parse_overrides(pairs: list[str]) -> dict:
    from .train import TrainConfig

    types = {f.name: f.type for f in fields(TrainConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"unknown setting {key}; one of {', '.join(types)}")
        out[key] = _parse_value(value)
    return out


def _add_train_args(t: argparse.ArgumentParser, distill: bool) -> None:
    t.add_argument("--cases", required=not distill, default=None, help="case file from `starstream cases export`")
    t.add_argument("--trajectories", default=None, help="labelled teacher trajectories: a JSON-lines file or a dataset directory")
    t.add_argument("--out", required=True)
    t.add_argument("--preset", default="cpu")
    t.add_argument("--name", default="star")
    t.add_argument("--version", default=None, help="model version; default: the UTC time")
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a TrainConfig field")
    t.add_argument("--report", default=None, help="also write the training report (JSON) here")
    t.add_argument("--stage1-out", default=None, help="with stage 2: also write the stage-1 model (before GRPO) here")
    s2 = t.add_mutually_exclusive_group()
    s2.add_argument("--stage2", dest="stage2", action="store_true", default=None, help="run stage 2 (GRPO) after stage 1")
    s2.add_argument("--no-stage2", dest="stage2", action="store_false", help="ablation: stage 1 only")
    t.add_argument("--no-teacher", action="store_true", help="ablation: outcome targets only (teacher_weight=0)")
    t.add_argument("--no-evidence", action="store_true", help="ablation: no CST evidence in the input (evidence=false)")


def _train_config(args: argparse.Namespace, distill: bool):
    from .train import config_from

    overrides = _parse_overrides(args.set)
    if args.trajectories is not None:
        overrides["trajectories"] = args.trajectories
    if distill:
        overrides.setdefault("stage2", True)
    if args.stage2 is not None:
        overrides["stage2"] = args.stage2
    if args.no_teacher:
        overrides["teacher_weight"] = 0.0
    if args.no_evidence:
        overrides["evidence"] = False
    return config_from(args.preset, overrides)


def _run_train(args: argparse.Namespace, distill: bool) -> int:
    import datetime

    from .export import write_model_dir
    from .train import describe, train

    cfg = _train_config(args, distill)
    result = train(args.cases, cfg, log=lambda line: print(line, flush=True))
    version = args.version or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d.%H%M%S")
    metrics = {f"validation_{k}": v for k, v in result.validation.items()}
    if result.test:
        metrics.update({f"test_{k}": v for k, v in result.test.items()})
    if result.stage1_validation:
        metrics.update({f"stage1_validation_{k}": v for k, v in result.stage1_validation.items()})
    if result.stage1_test:
        metrics.update({f"stage1_test_{k}": v for k, v in result.stage1_test.items()})
    def write(out: str, model: Any, version: str, metrics: dict[str, float]) -> dict[str, Any]:
        return write_model_dir(
            Path(out),
            model=model,
            tokenizer=result.tokenizer,
            encoder=result.encoder,
            spec=load_prompt_spec(),
            parity_records=result.parity_records,
            name=args.name,
            version=version,
            metrics=metrics,
            config={"preset": args.preset, **describe(cfg)},
            input_variant=None if cfg.evidence else "no-evidence",
        )

    if args.stage1_out is not None:
        if result.stage1_model is None:
            raise SystemExit("--stage1-out needs stage 2 (the stage-1 model is the one before GRPO)")
        stage1 = write(args.stage1_out, result.stage1_model, f"{version}-stage1",
                       {f"validation_{k}": v for k, v in (result.stage1_validation or {}).items()}
                       | {f"test_{k}": v for k, v in (result.stage1_test or {}).items()})
        print(f"stage-1 model {stage1['name']}-{stage1['version']} written to {args.stage1_out}", flush=True)
    manifest = write(args.out, result.model, version, metrics)
    print(f"model {manifest['name']}-{manifest['version']} written to {args.out} in {result.seconds:.0f}s "
          f"(export check max |diff| {manifest['parityMaxAbsDiff']:.2e})", flush=True)
    if args.report:
        Path(args.report).write_text(json.dumps({
            "history": result.history, "validation": result.validation, "test": result.test,
            "stage1_validation": result.stage1_validation, "stage1_test": result.stage1_test,
            "stage2_history": result.stage2_history, "trajectories": result.trajectory_stats,
            "seconds": result.seconds, "config": describe(cfg),
        }, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="starstream_train")
    sub = p.add_subparsers(dest="command", required=True)
    _add_train_args(sub.add_parser("train", help="train STAR on a case file and write the model directory"), distill=False)
    distill_help = "stage 1 on teacher trajectories (+ cases), then stage 2 (GRPO); write the model directory"
    _add_train_args(sub.add_parser("distill", help=distill_help), distill=True)
    c = sub.add_parser("chat-export", help="write kept trajectories as chat-format SFT data (JSON lines of {messages})")
    c.add_argument("--trajectories", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--max-teacher-rank", type=int, default=None, help="keep only runs that ranked the observed item within this rank")
    c.add_argument("--system-file", default=None, help="a text file with the system prompt (default: chat.SYSTEM_PROMPT)")
    v = sub.add_parser("vectors", help="write the shared prompt test vectors with a model's tokenizer")
    v.add_argument("--model", required=True)
    v.add_argument("--cases", default=None, help="a case file to take real cases from")
    v.add_argument("--out", required=True)
    args = p.parse_args(argv)

    if args.command in ("train", "distill"):
        distill = args.command == "distill"
        if distill and args.cases is None and args.trajectories is None:
            p.error("distill needs --trajectories, --cases or both")
        return _run_train(args, distill)
    if args.command == "chat-export":
        from .chat import SYSTEM_PROMPT, export_chat

        system = Path(args.system_file).read_text(encoding="utf-8") if args.system_file else SYSTEM_PROMPT
        stats = export_chat(args.trajectories, args.out, system=system, max_teacher_rank=args.max_teacher_rank)
        print(f"{stats.get('written', 0)} conversations written to {args.out} ({json.dumps(stats)})")
        return 0
    if args.command == "vectors":
        from .vectors import write_vectors

        n = write_vectors(Path(args.model), Path(args.out), Path(args.cases) if args.cases else None)
        print(f"{n} vectors written to {args.out}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
