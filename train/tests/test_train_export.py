"""Training, export and parity: determinism, PyTorch vs onnxruntime agreement, the model directory contract."""
import json

import numpy as np
import onnxruntime as ort
import pytest

from starstream_train.cases import CaseFileError, read_cases
from starstream_train.export import pad, write_model_dir
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
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert np.array_equal(x.numpy(), y.numpy()), name
    assert set(a.validation) == {"hr1", "hr3", "hr5", "avg", "ndcg10"}

    out = tmp_path / "model"
    manifest = write_model_dir(out, model=a.model, tokenizer=a.tokenizer, encoder=a.encoder, spec=load_prompt_spec(),
                               parity_records=a.parity_records, name="star", version="t-1", metrics={}, config={})
    assert sorted(p.name for p in out.iterdir()) == ["parity.jsonl", "star.json", "star.onnx", "tokenizer.json"]
    assert manifest["parityMaxAbsDiff"] <= 1e-4
    assert manifest["promptTemplateVersion"] == load_prompt_spec().version
    assert manifest["featureWidth"] == load_prompt_spec().feature_width
    lines = [json.loads(l) for l in (out / "parity.jsonl").read_text().splitlines()]
    assert len(lines) == len(a.parity_records)
    assert all(len(l["texts"]) == len(l["ids"]) == len(l["scores"]) == len(l["case"]["candidates"]) for l in lines)
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
