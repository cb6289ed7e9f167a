from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MODEL = REPO / "test" / "fixtures" / "star-tiny"
VECTORS = REPO / "test" / "fixtures" / "prompt-vectors.jsonl"


@pytest.fixture(scope="session")
def fixture_model() -> Path:
    return FIXTURE_MODEL


@pytest.fixture(scope="session")
def parity_cases_file(tmp_path_factory) -> Path:
    """A small case file made of the fixture's parity cases (label: the best-scored candidate), for training tests."""
    import json

    out = tmp_path_factory.mktemp("cases") / "cases.jsonl"
    lines = [json.loads(line) for line in (FIXTURE_MODEL / "parity.jsonl").read_text().splitlines() if line.strip()]
    with open(out, "w") as f:
        for k in range(60):
            p = lines[k % len(lines)]
            label = max(range(len(p["scores"])), key=lambda i: p["scores"][i])
            split = "train" if k < 50 else "test"
            item = p["case"]["candidates"][label]["itemId"]
            f.write(json.dumps({"split": split, "label": label, "itemId": item, "case": p["case"]}) + "\n")
    return out


def make_labelled_trajectories(n: int = 24) -> list[dict]:
    """Labelled teacher trajectories (src/domain/teacher.ts `LabelledTrajectory`) over the fixture's parity
    cases: the teacher ranks by the fixture model's scores. Mostly the observed item is the teacher's first
    or third; some lists are shorter (the pipeline's lists vary), some outcomes are not candidates or expired,
    one run failed."""
    import json

    lines = [json.loads(line) for line in (FIXTURE_MODEL / "parity.jsonl").read_text().splitlines() if line.strip()]
    out = []
    for k in range(n):
        p = lines[k % len(lines)]
        case = dict(p["case"])
        cands = case["candidates"] if k % 3 else case["candidates"][:12]
        scores = p["scores"][: len(cands)]
        order = sorted(range(len(cands)), key=lambda i: -scores[i])
        ranking = [cands[i]["itemId"] for i in order]
        kind = "absent" if k % 8 == 5 else "expired" if k == 7 else "failed" if k == 11 else "third" if k % 4 == 1 else "first"
        if kind == "first":
            outcome = {"status": "observed", "nextItemId": ranking[0], "observedAtMs": 1, "studentRank": 1}
            teacher_rank = 1
        elif kind == "third":
            outcome = {"status": "observed", "nextItemId": ranking[2], "observedAtMs": 1, "studentRank": 3}
            teacher_rank = 3
        elif kind == "absent":
            outcome = {"status": "observed", "nextItemId": "i-not-listed", "observedAtMs": 1, "studentRank": None}
            teacher_rank = None
        else:
            outcome = {"status": "expired", "horizonMs": 3_600_000}
            teacher_rank = None
        serialized = "\n".join([
            "<plan>Check recent interest.\n- recent: last items</plan>",
            f'<tool_call agent="recent">{json.dumps({"tool": "item_cf", "args": {"itemId": ranking[0]}}, separators=(",", ":"))}'
            "</tool_call>",
            '<tool_response agent="recent" tool="item_cf">co-occurs 3 times with &lt;hist&gt;</tool_response>',
            f'<finding agent="recent">{ranking[0]} fits.</finding>',
            "<reflection>Consistent.</reflection>",
            f"<recommend>{json.dumps({'ranking': ranking, 'justification': 'recent co-occurrence'})}</recommend>",
        ])
        out.append({
            "case": {
                "caseId": f"case-t{k}", "eventId": f"t{k}", "atMs": 1_706_000_000_000 + k * 1000, "reason": "uniform",
                "margin": None, "user": case["user"], "candidates": cands, "studentScores": scores,
                "studentModel": "star-tiny", "templateVersion": "prompt-1",
            },
            "trajectory": {
                "caseId": f"case-t{k}", "backend": "scripted", "model": "double", "startedAtMs": 0, "ms": 5,
                "steps": [], "turns": [], "ranking": [] if kind == "failed" else ranking,
                "status": "failed" if kind == "failed" else "completed",
                "failure": "limit" if kind == "failed" else None, "serialized": serialized,
            },
            "outcome": outcome,
            "teacherRank": teacher_rank,
        })
    return out


@pytest.fixture(scope="session")
def trajectories_dir(tmp_path_factory) -> Path:
    """A dataset directory laid out as src/teacher/dataset/writer.ts writes it (keep filter `all`): kept parts
    (one with a record written twice, at least once), a rejected part (the failed run), a part still being
    written (`.open`, torn), and the manifest that lists the final parts."""
    import json

    out = tmp_path_factory.mktemp("trajectories")
    items = make_labelled_trajectories()
    failed = [t for t in items if t["trajectory"]["status"] == "failed"]
    kept = [t for t in items if t["trajectory"]["status"] != "failed"]
    parts = {"kept-000001.jsonl": ("kept", kept[:11] + kept[:1]), "kept-000002.jsonl": ("kept", kept[11:]),
             "rejected-000001.jsonl": ("rejected", failed)}
    for name, (_, chunk) in parts.items():
        (out / name).write_text("".join(json.dumps(t) + "\n" for t in chunk))
    (out / "kept-000003.jsonl.open").write_text(json.dumps(kept[0])[:50])
    manifest = {
        "schemaVersion": "labelled-trajectory-1", "updatedAtMs": 0, "filter": {"keep": "all", "k": 5},
        "teacherModels": {"scripted/double": len(items)},
        "counts": {"kept": len(kept), "rejected": len(failed)},
        "files": [{"path": name, "split": split, "records": len(chunk),
                   "fromMs": min(t["case"]["atMs"] for t in chunk), "toMs": max(t["case"]["atMs"] for t in chunk)}
                  for name, (split, chunk) in parts.items()],
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out
