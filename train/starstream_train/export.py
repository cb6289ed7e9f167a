"""Writes the model directory the server loads (src/star/registry/manifest.ts):
star.onnx, tokenizer.json, star.json and parity.jsonl (cases with texts, ids and onnxruntime scores)."""
from __future__ import annotations

import datetime
import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort
import torch

from .model import StarModel
from .prompt import CaseEncoder, PromptSpec, load_cst_version

INPUT_NAMES = {"ids": "input_ids", "mask": "attention_mask", "features": "features"}
OUTPUT_NAME = "scores"
OPSET = 17


class ExportCheckError(RuntimeError):
    pass


def export_onnx(model: StarModel, path: Path, example: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    """TorchScript-based exporter (dynamo=False): plain ops, dynamic batch and length axes."""
    model.eval()
    dynamic = {
        INPUT_NAMES["ids"]: {0: "batch", 1: "length"},
        INPUT_NAMES["mask"]: {0: "batch", 1: "length"},
        INPUT_NAMES["features"]: {0: "batch"},
        OUTPUT_NAME: {0: "batch"},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=[INPUT_NAMES["ids"], INPUT_NAMES["mask"], INPUT_NAMES["features"]],
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(sess: ort.InferenceSession, ids: np.ndarray, mask: np.ndarray, features: np.ndarray) -> np.ndarray:
    return sess.run([OUTPUT_NAME], {INPUT_NAMES["ids"]: ids, INPUT_NAMES["mask"]: mask, INPUT_NAMES["features"]: features})[0]


def pad(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    n = max(len(r) for r in rows)
    ids = np.zeros((len(rows), n), dtype=np.int64)
    mask = np.zeros((len(rows), n), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def check_export(model: StarModel, sess: ort.InferenceSession, ids: np.ndarray, mask: np.ndarray, feats: np.ndarray, tolerance: float) -> float:
    """PyTorch and onnxruntime must agree on the same batch; returns the largest |difference|."""
    with torch.no_grad():
        expected = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(feats)).numpy()
    got = run_onnx(sess, ids, mask, feats)
    if got.shape != expected.shape:
        raise ExportCheckError(f"onnx output shape {got.shape} != torch {expected.shape}")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= tolerance:
        raise ExportCheckError(f"onnxruntime and PyTorch disagree: max |diff| {diff} > {tolerance}")
    return diff


def write_model_dir(
    out: Path,
    *,
    model: StarModel,
    tokenizer: Any,
    encoder: CaseEncoder,
    spec: PromptSpec,
    parity_records: Sequence[dict[str, Any]],
    name: str,
    version: str,
    metrics: dict[str, float],
    config: dict[str, Any],
    check_tolerance: float = 1e-4,
    input_variant: str | None = None,
) -> dict[str, Any]:
    """`input_variant` names a transform the model's cases went through before rendering (`no-evidence`: see
    train.strip_evidence). The server renders every case in full, so such a model is written with prompt
    template version `<version>+<variant>`, which the registry refuses (MODEL_TEMPLATE_MISMATCH) instead of
    serving it on inputs it never saw; an offline evaluator that applies the same transform can score it."""
    out.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    cases = [r["case"] for r in parity_records]
    encoded = [encoder.encode_case(c) for c in cases]
    rows = [row for _, rs, _ in encoded for row in rs]
    feats = np.concatenate([f for _, _, f in encoded]).astype(np.float32)
    ids, mask = pad(rows)
    onnx_path = out / "star.onnx"
    export_onnx(model, onnx_path, (torch.from_numpy(ids[:2]), torch.from_numpy(mask[:2]), torch.from_numpy(feats[:2])))
    sess = session(onnx_path)
    max_diff = check_export(model, sess, ids, mask, feats, check_tolerance)
    tokenizer.save(str(out / "tokenizer.json"))
    with open(out / "parity.jsonl", "w", encoding="utf-8") as f:
        for case, (texts, case_rows, case_feats) in zip(cases, encoded):
            cid, cmask = pad(case_rows)
            scores = run_onnx(sess, cid, cmask, case_feats)
            line = {"case": case, "texts": texts, "ids": case_rows, "scores": [float(s) for s in scores]}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    manifest = {
        "name": name,
        "version": version,
        "promptTemplateVersion": spec.version if input_variant is None else f"{spec.version}+{input_variant}",
        "cstTemplateVersion": spec.cst_template_version,
        "inputNames": INPUT_NAMES,
        "outputName": OUTPUT_NAME,
        "maxLength": encoder.max_length,
        "featureWidth": spec.feature_width,
        "scoreReading": "logit",
        "parityMaxAbsDiff": max_diff,
        "trainedAt": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "metrics": metrics,
        "config": config,
    }
    if input_variant is not None:
        manifest["inputVariant"] = input_variant
    if spec.cst_template_version != load_cst_version():
        raise ExportCheckError(f"prompt spec expects CST {spec.cst_template_version}, schemas/cst-templates.json is {load_cst_version()}")
    (out / "star.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
