"""Writes the model directory the server loads (src/star/registry/manifest.ts):
star.onnx, tokenizer.json, star.json and parity.jsonl (cases with texts, ids and onnxruntime scores)."""
from __future__ import annotations

import datetime
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


# The two warnings torch's legacy TorchScript exporter always gives, whatever the model; both are about that
# exporter itself, not about this model's graph, so they are silenced by exact message. Every other warning
# (a TracerWarning above all: a Python value frozen into the trace) is shown; the parity check at several
# lengths in write_model_dir is what proves the dynamic axes generalise.
KNOWN_HARMLESS_EXPORT_WARNINGS = (
    # torch >= 2.9 defaults to the torch.export-based exporter (dynamo=True), which needs onnxscript and emits
    # a graph of different ops; this exporter is chosen on purpose (plain ops, dynamic axes, no extra package).
    r"You are using the legacy TorchScript-based ONNX export",
    # torch.onnx's own internal exporter_context() is marked deprecated (since 2.7), and the legacy export path
    # calls it; it only sets the training mode (the model is put in eval mode before) and the log verbosity.
    r"The feature will be removed\. Please remove usage of this function",
)


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
        for message in KNOWN_HARMLESS_EXPORT_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
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


def pad(rows: Sequence[Sequence[int]], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ids and mask, [len(rows), length] int64; `length` defaults to the longest row."""
    n = max(len(r) for r in rows) if length is None else length
    if any(len(r) > n for r in rows):
        raise ValueError(f"a row is longer than the padded length {n}")
    ids = np.zeros((len(rows), n), dtype=np.int64)
    mask = np.zeros((len(rows), n), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def check_export(
    model: StarModel, sess: ort.InferenceSession, ids: np.ndarray, mask: np.ndarray, feats: np.ndarray, tolerance: float
) -> float:
    """PyTorch and onnxruntime must agree on the same batch; returns the largest |difference|."""
    with torch.no_grad():
        expected = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(feats)).numpy()
    got = run_onnx(sess, ids, mask, feats)
    if got.shape != expected.shape:
        raise ExportCheckError(f"onnx output shape {got.shape} != torch {expected.shape} (length {ids.shape[1]})")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= tolerance:
        raise ExportCheckError(f"onnxruntime and PyTorch disagree at length {ids.shape[1]}: max |diff| {diff} > {tolerance}")
    return diff


def parity_batches(rows: Sequence[Sequence[int]], feats: np.ndarray, case_sizes: Sequence[int], max_length: int
                   ) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The padded lengths the export is checked at, each as the (ids, mask, features) batches to run:

    - `short`: the shortest rows alone, unpadded (the fewest positions the dynamic length axis sees);
    - `typical`: every parity case as its own batch, padded to its longest row, as the server scores a request
      (and as parity.jsonl is written);
    - `max`: all rows padded to `max_length`, the model's last position embedding, and the same rows filled with
      their own tokens up to `max_length` (no padding: attention over the full length).
    The export's example input is 2 rows at the longest row's length, so each check runs other shapes than
    the trace saw."""
    lengths = np.array([len(r) for r in rows])
    shortest = [i for i, n in enumerate(lengths) if n == lengths.min()]
    ids, mask = pad([rows[i] for i in shortest])
    out: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"short": [(ids, mask, feats[shortest])]}
    out["typical"] = []
    start = 0
    for size in case_sizes:
        ids, mask = pad(rows[start : start + size])
        out["typical"].append((ids, mask, feats[start : start + size]))
        start += size
    ids, mask = pad(rows, length=max_length)
    filled = np.array([[r[k % len(r)] for k in range(max_length)] for r in rows], dtype=np.int64)
    out["max"] = [(ids, mask, feats), (filled, np.ones_like(filled), feats)]
    return out


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
    checks = parity_batches(rows, feats, [len(rs) for _, rs, _ in encoded], encoder.max_length)
    diffs = {label: max(check_export(model, sess, *b, check_tolerance) for b in batches) for label, batches in checks.items()}
    max_diff = max(diffs.values())
    # label -> the padded lengths checked and the largest |difference| among them (information, like parityMaxAbsDiff)
    parity_lengths = {
        label: {"lengths": sorted({int(b[0].shape[1]) for b in batches}), "maxAbsDiff": diffs[label]} for label, batches in checks.items()
    }
    tokenizer.save(str(out / "tokenizer.json"))
    with open(out / "parity.jsonl", "w", encoding="utf-8") as f:
        for case, (texts, case_rows, case_feats) in zip(cases, encoded, strict=True):
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
        "parityLengths": parity_lengths,
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
