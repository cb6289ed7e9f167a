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
    lines = [json.loads(l) for l in (FIXTURE_MODEL / "parity.jsonl").read_text().splitlines() if l.strip()]
    with open(out, "w") as f:
        for k in range(60):
            p = lines[k % len(lines)]
            label = max(range(len(p["scores"])), key=lambda i: p["scores"][i])
            split = "train" if k < 50 else "test"
            f.write(json.dumps({"split": split, "label": label, "itemId": p["case"]["candidates"][label]["itemId"], "case": p["case"]}) + "\n")
    return out
