"""The distillation data set as the TypeScript export writes it (src/teacher/dataset/writer.ts), read by
`starstream_train.labelled`. The data set is written by the real writer through node
(test/teacher/dataset/write-sample-dataset.ts), so this test breaks when the two sides drift apart."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from starstream_train.labelled import SCHEMA_VERSION, read_labelled, read_manifest, to_records

REPO = Path(__file__).resolve().parents[2]
WRITER = REPO / "test" / "teacher" / "dataset" / "write-sample-dataset.ts"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to run the TypeScript writer")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("teacher-dataset") / "dataset"
    done = subprocess.run(
        ["node", "--import", "tsx", str(WRITER), str(out)], cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout.strip().splitlines()[-1])


def test_manifest_is_the_writers(exported):
    out, summary = exported
    manifest = read_manifest(out)
    assert manifest is not None
    assert manifest["schemaVersion"] == SCHEMA_VERSION
    assert manifest["filter"] == {"keep": "topk", "k": 3}
    assert manifest["counts"]["kept"] == summary["kept"]
    assert manifest["counts"]["rejected"] == summary["rejected"]
    assert sum(f["records"] for f in manifest["files"]) == summary["kept"] + summary["rejected"]
    assert all(not f["path"].endswith(".open") for f in manifest["files"])
    assert (out / "kept-000003.jsonl.open").exists(), "the crashed run left an open part"


def test_reader_reads_the_kept_trajectories_once_and_never_the_open_parts(exported):
    out, summary = exported
    kept = read_labelled(out)
    assert [t["case"]["caseId"] for t in kept] == summary["keptCaseIds"]
    for t in kept:
        assert t["trajectory"]["status"] == "completed"
        assert t["outcome"]["status"] == "observed"
        assert 1 <= t["teacherRank"] <= 3
        assert t["trajectory"]["ranking"].index(t["outcome"]["nextItemId"]) + 1 == t["teacherRank"]
    both = read_labelled(out, splits=("kept", "rejected"))
    assert len(both) == summary["uniqueCases"]
    assert [t["case"]["atMs"] for t in both] == sorted(t["case"]["atMs"] for t in both)


def test_exported_trajectories_become_training_lists(exported):
    out, summary = exported
    records, stats = to_records(read_labelled(out))
    assert stats["lists"] == len(summary["keptCaseIds"])
    for r in records:
        assert r["source"] == "teacher"
        assert r["label"] >= 0 and r["case"]["candidates"][r["label"]]["itemId"] == "a"
        assert r["teacher"] is not None and len(r["teacher"]) == len(r["case"]["candidates"])
