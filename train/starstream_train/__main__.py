"""python -m starstream_train train --cases FILE --out DIR [--preset tiny|cpu|gpu] [--set key=value ...]
python -m starstream_train vectors --model DIR --out FILE  (the shared prompt test vectors)"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .prompt import load_prompt_spec


def _parse_overrides(pairs: list[str]) -> dict:
    from .train import TrainConfig

    types = {f.name: f.type for f in fields(TrainConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"unknown setting {key}; one of {', '.join(types)}")
        out[key] = None if value in ("none", "None") else json.loads(value) if value[:1] in "0123456789-[{" else value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="starstream_train")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train STAR on a case file and write the model directory")
    t.add_argument("--cases", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--preset", default="cpu")
    t.add_argument("--name", default="star")
    t.add_argument("--version", default=None, help="model version; default: the UTC time")
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a TrainConfig field")
    t.add_argument("--report", default=None, help="also write the training report (JSON) here")
    v = sub.add_parser("vectors", help="write the shared prompt test vectors with a model's tokenizer")
    v.add_argument("--model", required=True)
    v.add_argument("--cases", default=None, help="a case file to take real cases from")
    v.add_argument("--out", required=True)
    args = p.parse_args(argv)

    if args.command == "train":
        import datetime

        from .export import write_model_dir
        from .train import config_from, describe, train

        cfg = config_from(args.preset, _parse_overrides(args.set))
        result = train(args.cases, cfg, log=lambda line: print(line, flush=True))
        version = args.version or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d.%H%M%S")
        metrics = {f"validation_{k}": v for k, v in result.validation.items()}
        if result.test:
            metrics.update({f"test_{k}": v for k, v in result.test.items()})
        manifest = write_model_dir(
            Path(args.out),
            model=result.model,
            tokenizer=result.tokenizer,
            encoder=result.encoder,
            spec=load_prompt_spec(),
            parity_records=result.parity_records,
            name=args.name,
            version=version,
            metrics=metrics,
            config={"preset": args.preset, **describe(cfg)},
        )
        print(f"model {manifest['name']}-{manifest['version']} written to {args.out} in {result.seconds:.0f}s "
              f"(export check max |diff| {manifest['parityMaxAbsDiff']:.2e})", flush=True)
        if args.report:
            Path(args.report).write_text(json.dumps({"history": result.history, "validation": result.validation, "test": result.test,
                                                      "seconds": result.seconds, "config": describe(cfg)}, indent=2) + "\n")
        return 0
    if args.command == "vectors":
        from .vectors import write_vectors

        n = write_vectors(Path(args.model), Path(args.out), Path(args.cases) if args.cases else None)
        print(f"{n} vectors written to {args.out}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
