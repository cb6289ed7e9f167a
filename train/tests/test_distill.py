"""Distillation: reading labelled trajectories, the stage-1 loss with the teacher's soft target, the chat
export, and stage 1 then stage 2 end to end into a model directory that passes the export's parity check."""
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import make_labelled_trajectories

from starstream_train.__main__ import _parse_value, main
from starstream_train.chat import SYSTEM_PROMPT, chat_examples
from starstream_train.labelled import TrajectoryFileError, read_labelled, read_manifest, teacher_scores, to_records
from starstream_train.prompt import load_prompt_spec
from starstream_train.train import stage1_loss, strip_evidence

# --- reading ------------------------------------------------------------------------------------------------

def test_reader_reads_the_kept_parts_of_a_dataset_once_in_time_order(trajectories_dir):
    items = read_labelled(trajectories_dir)
    manifest = read_manifest(trajectories_dir)
    assert len(items) == 23 and manifest is not None and manifest["counts"]["kept"] == 23
    assert len({t["case"]["caseId"] for t in items}) == 23  # the duplicate is read once
    assert [t["case"]["atMs"] for t in items] == sorted(t["case"]["atMs"] for t in items)
    assert all(t["trajectory"]["status"] == "completed" for t in items)
    assert len(read_labelled(trajectories_dir, splits=("kept", "rejected"))) == 24
    assert len(read_labelled(trajectories_dir / "kept-000001.jsonl")) == 11  # one file, de-duplicated


def test_reader_refuses_an_unknown_schema(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"schemaVersion": "labelled-trajectory-9", "files": []}))
    with pytest.raises(TrajectoryFileError, match="labelled-trajectory-9"):
        read_labelled(tmp_path)


def test_records_use_teacher_targets_and_outcomes():
    items = make_labelled_trajectories()
    records, stats = to_records(items)
    assert stats == {"read": 24, "skipped_failed": 1, "lists": 23, "with_outcome": 19, "with_teacher": 23, "teacher_only": 4}
    first = records[0]
    assert set(first["case"]) == {"eventId", "atMs", "user", "candidates"}  # the ScoringCase part only
    ranking = items[0]["trajectory"]["ranking"]
    index = {c["itemId"]: j for j, c in enumerate(first["case"]["candidates"])}
    assert first["teacher"][index[ranking[0]]] == 0.0 and first["teacher"][index[ranking[1]]] == -1.0
    assert first["label"] == index[ranking[0]]
    absent = records[[r["caseId"] for r in records].index("case-t5")]
    assert absent["label"] == -1 and absent["teacher"] is not None

    _, stats = to_records(items, absent_outcome="drop")
    assert stats["lists"] == 19 and stats["skipped_no_target"] == 4
    records, stats = to_records(items, use_teacher=False)
    assert stats["lists"] == 19 and all(r["teacher"] is None and r["label"] >= 0 for r in records)
    _, stats = to_records(items, max_teacher_rank=1)
    assert stats["lists"] == 16 and stats["skipped_filter"] == 7


def test_teacher_scores_ignore_unknown_ids_and_tie_the_unranked():
    cands = [{"itemId": x} for x in ("a", "b", "c", "d")]
    assert teacher_scores(cands, ["c", "zz", "a", "c"]) == [-1.0, -2.0, 0.0, -2.0]
    assert teacher_scores(cands, ["zz"]) is None


def test_reader_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"case": {}, "trajectory": {}, "outcome": {}}\n')
    with pytest.raises(TrajectoryFileError, match="case lacks eventId"):
        read_labelled(bad)
    bad.write_text("{oops\n")
    with pytest.raises(TrajectoryFileError, match="bad.jsonl:1: not JSON"):
        read_labelled(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrajectoryFileError, match=r"no \*\.jsonl files"):
        read_labelled(tmp_path / "empty")


# --- stage 1 loss -------------------------------------------------------------------------------------------

def test_stage1_loss_with_soft_and_hard_targets():
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    teacher = torch.tensor([[0.0, -1.0, -2.0], [-2.0, 0.0, -1.0]])
    target = torch.tensor([1, -1])  # list 2: the observed item is not a candidate
    t = 2.0
    logp = torch.log_softmax(scores, -1)
    q = torch.softmax(teacher / t, -1)
    kl = (q * (q.log() - logp)).sum(-1)
    want = (0.5 * -logp[0, 1] + 0.3 * (kl[0] + kl[1])) / 2
    got = stage1_loss(scores, target, teacher=teacher, has_teacher=torch.tensor([True, True]),
                      hard_weight=0.5, teacher_weight=0.3, temperature=t)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    # a list that matches its teacher target exactly has zero soft loss
    assert stage1_loss(teacher[:1] / t, torch.tensor([-1]), teacher=teacher[:1], has_teacher=torch.tensor([True]),
                       temperature=t).item() == pytest.approx(0.0, abs=1e-6)


def test_stage1_loss_outcome_only_is_cross_entropy_and_ignores_padding():
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    target = torch.tensor([1, 2])
    want = torch.nn.functional.cross_entropy(scores, target)
    assert stage1_loss(scores, target).item() == pytest.approx(want.item())
    padded = torch.cat([scores, torch.tensor([[40.0], [40.0]])], 1)
    valid = torch.tensor([[True, True, True, False]] * 2)
    teacher = torch.tensor([[0.0, -1.0, -2.0, 0.0], [0.0, -1.0, -2.0, 0.0]])
    got = stage1_loss(padded, target, valid=valid, teacher=teacher, has_teacher=torch.tensor([False, False]))
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    got = stage1_loss(padded, target, valid=valid, teacher=teacher, has_teacher=torch.tensor([True, False]), teacher_weight=1.0)
    unpadded = stage1_loss(scores, target, teacher=teacher[:, :3], has_teacher=torch.tensor([True, False]))
    assert got.item() == pytest.approx(unpadded.item(), rel=1e-6)


def test_strip_evidence():
    case = make_labelled_trajectories(1)[0]["case"]
    stripped = strip_evidence(case)
    assert all(c["sentences"] == [] and set(c["features"].values()) == {0} for c in stripped["candidates"])
    assert [c["title"] for c in stripped["candidates"]] == [c["title"] for c in case["candidates"]]
    assert any(c["sentences"] for c in case["candidates"])  # the original is untouched


def test_set_values_parse_like_the_typescript_wrapper_writes_them():
    assert [_parse_value(v) for v in ("true", "false", "none", "0.5", "8", "softmax")] == [True, False, None, 0.5, 8, "softmax"]


# --- chat export --------------------------------------------------------------------------------------------

def test_chat_export(tmp_path, trajectories_dir):
    out = tmp_path / "sft.jsonl"
    assert main(["chat-export", "--trajectories", str(trajectories_dir), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    items = read_labelled(trajectories_dir)
    assert len(lines) == 23  # the failed run is in the rejected part
    msgs = lines[0]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"] and msgs[0]["content"] == SYSTEM_PROMPT
    assert msgs[2]["content"] == items[0]["trajectory"]["serialized"]
    assert msgs[2]["content"].startswith("<plan>") and "<recommend>" in msgs[2]["content"]
    user = msgs[1]["content"]
    case = items[0]["case"]
    assert user.startswith("<user> ") and f"candidates ({len(case['candidates'])}):" in user
    first = min(c["itemId"] for c in case["candidates"])
    assert f"\n[{first}] <cand> " in user and "\n<ev> " in user and "\n<hist> " in user
    examples, stats = chat_examples(make_labelled_trajectories(), max_teacher_rank=1)
    assert stats["written"] == 16 and stats["skipped_filter"] == 7 and stats["skipped_failed"] == 1


# --- end to end ---------------------------------------------------------------------------------------------

TINY = ["epochs=1", "vocab_size=200", "threads=1", "validation_share=0.2", "grpo_batch_lists=8", "grpo_group=4", "batch_lists=8"]


def check_model_dir(out):
    manifest = json.loads((out / "star.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["parity.jsonl", "star.json", "star.onnx", "tokenizer.json"]
    assert manifest["parityMaxAbsDiff"] <= 1e-4
    sess = ort.InferenceSession(str(out / "star.onnx"), providers=["CPUExecutionProvider"])
    from starstream_train.export import pad
    from starstream_train.prompt import feature_row

    spec = load_prompt_spec()
    for line in (out / "parity.jsonl").read_text().splitlines():
        p = json.loads(line)
        ids, mask = pad(p["ids"])
        feats = np.stack([feature_row(spec, p["case"]["user"], c) for c in p["case"]["candidates"]])
        scores = sess.run(["scores"], {"input_ids": ids, "attention_mask": mask, "features": feats})[0]
        np.testing.assert_allclose(scores, p["scores"], atol=1e-5)
    return manifest


def test_stage1_then_stage2_writes_a_model_that_passes_parity(tmp_path, parity_cases_file, trajectories_dir, fixture_model):
    out, report, stage1 = tmp_path / "model", tmp_path / "report.json", tmp_path / "stage1"
    rc = main(["distill", "--cases", str(parity_cases_file), "--trajectories", str(trajectories_dir), "--out", str(out),
               "--preset", "tiny", "--version", "d-1", "--report", str(report), "--stage1-out", str(stage1),
               "--set", *TINY, f"tokenizer={fixture_model / 'tokenizer.json'}"])
    assert rc == 0
    manifest = check_model_dir(out)
    assert manifest["promptTemplateVersion"] == load_prompt_spec().version and "inputVariant" not in manifest
    assert {"stage1_validation_avg", "validation_avg", "test_avg", "stage1_test_avg"} <= set(manifest["metrics"])
    r = json.loads(report.read_text())
    assert r["config"]["stage2"] is True and r["trajectories"]["lists"] == 23
    s2 = r["stage2_history"][0]
    assert 0 <= s2["reward"] <= 1 and s2["kl"] >= 0 and 0 <= s2["zero_variance"] <= 1
    # the same run's stage-1 model (the "without stage 2" ablation), a servable directory of its own
    s1 = check_model_dir(stage1)
    assert s1["version"] == "d-1-stage1"
    assert s1["metrics"]["test_avg"] == manifest["metrics"]["stage1_test_avg"]
    assert (stage1 / "star.onnx").read_bytes() != (out / "star.onnx").read_bytes()


def test_ablations_outcomes_only_without_evidence_and_stage2(tmp_path, trajectories_dir, fixture_model):
    out, report = tmp_path / "ablation", tmp_path / "report.json"
    rc = main(["distill", "--trajectories", str(trajectories_dir), "--out", str(out), "--preset", "tiny",
               "--no-stage2", "--no-teacher", "--no-evidence", "--report", str(report),
               "--set", *TINY, f"tokenizer={fixture_model / 'tokenizer.json'}"])
    assert rc == 0
    manifest = check_model_dir(out)
    # the server renders evidence, so it must refuse this model rather than serve it on inputs it never saw
    assert manifest["promptTemplateVersion"] == load_prompt_spec().version + "+no-evidence"
    assert manifest["inputVariant"] == "no-evidence"
    lines = [json.loads(line) for line in (out / "parity.jsonl").read_text().splitlines()]
    assert lines and all("<ev>" not in t for line in lines for t in line["texts"])
    r = json.loads(report.read_text())
    assert r["config"]["stage2"] is False and r["config"]["teacher_weight"] == 0.0 and r["config"]["evidence"] is False
    assert r["stage2_history"] == [] and r["trajectories"]["with_teacher"] == 0


def test_train_command_keeps_its_defaults(tmp_path, parity_cases_file, fixture_model):
    out = tmp_path / "plain"
    assert main(["train", "--cases", str(parity_cases_file), "--out", str(out), "--preset", "tiny",
                 "--set", "epochs=1", "vocab_size=200", "threads=1", f"tokenizer={fixture_model / 'tokenizer.json'}"]) == 0
    manifest = check_model_dir(out)
    assert manifest["config"]["stage2"] is False and manifest["config"]["trajectories"] is None
    assert not any(k.startswith("stage1_") for k in manifest["metrics"])
