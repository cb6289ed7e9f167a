"""Training, export and parity: determinism, PyTorch vs onnxruntime agreement, the model directory contract."""
import json

import numpy as np
import onnxruntime as ort
import pytest

from starstream_train.cases import CaseFileError, read_cases
from starstream_train.export import ExportCheckError, check_export, export_onnx, pad, parity_batches, write_model_dir
from starstream_train.prompt import load_prompt_spec
from starstream_train.train import config_from, train

TINY = {"epochs": 1, "vocab_size": 200, "threads": 1, "validation_share": 0.2}


def quiet(_line: str) -> None:
    pass


def test_tokenizer_ids_are_canonical(parity_cases_file):
    from starstream_train.tokenizer import SPECIAL_TOKENS, train_tokenizer

    tok = train_tokenizer(["<cand> star wars", "<ev> co-occurs 12 times", "<hist> toy story"] * 5, 60, min_frequency=1)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    rest = sorted((i, t) for t, i in vocab.items() if i >= len(SPECIAL_TOKENS))
    assert [t for _, t in rest] == sorted(t for _, t in rest)
    assert tok.encode("<cand> star <hist>x", add_special_tokens=False).tokens[0] == "<cand>"


def test_fixture_parity_reproduced_by_python_onnxruntime(fixture_model):
    sess = ort.InferenceSession(str(fixture_model / "star.onnx"), providers=["CPUExecutionProvider"])
    manifest = json.loads((fixture_model / "star.json").read_text())
    names = manifest["inputNames"]
    for line in (fixture_model / "parity.jsonl").read_text().splitlines():
        p = json.loads(line)
        ids, mask = pad(p["ids"])
        from starstream_train.prompt import feature_row

        feats = np.stack([feature_row(load_prompt_spec(), p["case"]["user"], c) for c in p["case"]["candidates"]])
        scores = sess.run([manifest["outputName"]], {names["ids"]: ids, names["mask"]: mask, names["features"]: feats})[0]
        np.testing.assert_allclose(scores, p["scores"], atol=1e-5)


def test_training_is_deterministic_and_export_agrees(parity_cases_file, tmp_path, fixture_model):
    cfg = config_from("tiny", {**TINY, "tokenizer": str(fixture_model / "tokenizer.json")})
    a = train(parity_cases_file, cfg, log=quiet)
    b = train(parity_cases_file, cfg, log=quiet)
    assert a.history[0]["loss"] == b.history[0]["loss"]
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert np.array_equal(x.numpy(), y.numpy()), name
    assert set(a.validation) == {"hr1", "hr3", "hr5", "avg", "ndcg10"}

    out = tmp_path / "model"
    manifest = write_model_dir(out, model=a.model, tokenizer=a.tokenizer, encoder=a.encoder, spec=load_prompt_spec(),
                               parity_records=a.parity_records, name="star", version="t-1", metrics={}, config={})
    assert sorted(p.name for p in out.iterdir()) == ["parity.jsonl", "star.json", "star.onnx", "tokenizer.json"]
    assert manifest["parityMaxAbsDiff"] <= 1e-4
    # Parity was checked at the shortest rows, each case's own padded length and the model's max_length.
    checked = manifest["parityLengths"]
    assert set(checked) == {"short", "typical", "max"}
    assert checked["max"]["lengths"] == [a.encoder.max_length]
    assert checked["short"]["lengths"][0] < max(checked["typical"]["lengths"]) <= a.encoder.max_length
    assert max(c["maxAbsDiff"] for c in checked.values()) == manifest["parityMaxAbsDiff"]
    assert manifest["promptTemplateVersion"] == load_prompt_spec().version
    assert manifest["featureWidth"] == load_prompt_spec().feature_width
    lines = [json.loads(line) for line in (out / "parity.jsonl").read_text().splitlines()]
    assert len(lines) == len(a.parity_records)
    assert all(len(p["texts"]) == len(p["ids"]) == len(p["scores"]) == len(p["case"]["candidates"]) for p in lines)
    # Dynamic axes: onnxruntime accepts another batch size and length than the export example.
    sess = ort.InferenceSession(str(out / "star.onnx"), providers=["CPUExecutionProvider"])
    ids = np.ones((7, 11), dtype=np.int64)
    assert sess.run(["scores"], {"input_ids": ids, "attention_mask": ids, "features": np.zeros((7, 10), np.float32)})[0].shape == (7,)


def test_case_file_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"split": "train", "label": 3, "case": {"candidates": []}}\n')
    with pytest.raises(CaseFileError, match="label 3 outside"):
        read_cases(bad)
    bad.write_text("not json\n")
    with pytest.raises(CaseFileError, match="not JSON"):
        read_cases(bad)


def test_export_shows_no_warning_but_the_known_harmless_ones(tmp_path):
    """The exporter's two notices about itself are silenced by message; anything else (a TracerWarning: a value
    frozen into the trace) would reach the user, and here fails the test."""
    import warnings

    import torch

    from starstream_train.model import ModelConfig, StarModel

    for bag in (0, 8):
        model = StarModel(ModelConfig(vocab_size=50, max_length=16, feature_width=10, bag=bag))
        example = (torch.ones(2, 9, dtype=torch.long), torch.ones(2, 9, dtype=torch.long), torch.zeros(2, 10))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            export_onnx(model, tmp_path / f"m{bag}.onnx", example)


def test_parity_is_checked_per_length_and_a_length_dependent_divergence_is_caught():
    import torch

    from starstream_train.model import ModelConfig, StarModel

    model = StarModel(ModelConfig(vocab_size=50, max_length=16, feature_width=3)).eval()
    rows = [[1, 9, 3], [1, 9, 9, 9, 3], [1, 8, 8, 8, 8, 8, 8, 3], [1, 7, 3]]
    feats = np.zeros((4, 3), np.float32)
    batches = parity_batches(rows, feats, [2, 2], 16)
    assert [b[0].shape for b in batches["short"]] == [(2, 3)]
    assert [b[0].shape for b in batches["typical"]] == [(2, 5), (2, 8)]
    assert [b[0].shape for b in batches["max"]] == [(4, 16), (4, 16)]
    assert batches["max"][1][1].all() and batches["max"][1][0][0].tolist()[:6] == [1, 9, 3, 1, 9, 3]

    class Drifts:
        """Agrees with PyTorch except at length 16, as a trace that froze the example's length would."""

        def run(self, _names, feed):
            ids, mask, f = (torch.from_numpy(feed[k]) for k in ("input_ids", "attention_mask", "features"))
            with torch.no_grad():
                out = model(ids, mask, f).numpy()
            return [out + (0.5 if ids.shape[1] == 16 else 0.0)]

    for label in ("short", "typical"):
        for b in batches[label]:
            assert check_export(model, Drifts(), *b, 1e-4) == 0.0
    with pytest.raises(ExportCheckError, match="at length 16"):
        check_export(model, Drifts(), *batches["max"][0], 1e-4)
