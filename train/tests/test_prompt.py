"""Python side of the shared prompt vectors (test/star/prompt-vectors.test.ts is the TypeScript side)."""
import json
from typing import Any

import numpy as np
import pytest
from conftest import FIXTURE_MODEL, VECTORS
from tokenizers import Tokenizer

from starstream_train.prompt import (
    CaseEncoder,
    js_round,
    load_prompt_spec,
    plan_truncation,
    sanitise_title,
    utf16_len,
)
from starstream_train.tokenizer import segment_ids, special_id

SPEC = load_prompt_spec()
TOKENIZER = Tokenizer.from_file(str(FIXTURE_MODEL / "tokenizer.json"))
VECTORS_LINES = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


def encoder(max_length: int) -> CaseEncoder:
    return CaseEncoder(SPEC, segment_ids(TOKENIZER), special_id(TOKENIZER, "[CLS]"), special_id(TOKENIZER, "[SEP]"), max_length)


@pytest.mark.parametrize("vector", VECTORS_LINES, ids=[v["name"] for v in VECTORS_LINES])
def test_vector_renders_tokenizes_and_featurizes_identically(vector):
    assert vector["promptTemplateVersion"] == SPEC.version
    texts, rows, feats = encoder(vector["maxLength"]).encode_case(vector["case"])
    for j, expected in enumerate(vector["expected"]):
        assert texts[j] == expected["text"]
        assert rows[j] == expected["ids"]
        np.testing.assert_allclose(feats[j], np.array(expected["features"], dtype=np.float32), atol=1e-6)


def test_segment_ids_equal_whole_text_ids_when_not_cut():
    for v in VECTORS_LINES:
        texts, rows, _ = encoder(v["maxLength"]).encode_case(v["case"])
        for text, row in zip(texts, rows, strict=True):
            whole = TOKENIZER.encode(text).ids  # the post-processor adds [CLS] and [SEP]
            if len(whole) <= v["maxLength"]:
                assert whole == row


def test_javascript_semantics():
    assert js_round(2.5) == 3 and js_round(-2.5) == -2 and js_round(0.49999999999999994) == 0
    emoji = "A" * 78 + "\U0001F600 tail"
    cut = sanitise_title(emoji, "x")
    assert utf16_len(cut) == 80 and cut.endswith("\u2026")
    assert sanitise_title('  <cand>\u0000 {x} "y"  ', "9") == "cand x y"
    assert sanitise_title(None, "7") == "item 7"


def test_truncation_order():
    lengths: dict[str, Any] = dict(candidate=5, evidence=[4, 4, 4], user=3, history=[2, 2, 2])
    assert plan_truncation(SPEC, budget=23, **lengths).history == 1
    p = plan_truncation(SPEC, budget=16, **lengths)
    assert (p.evidence, p.user, p.history, p.cut_at) == (2, True, 0, None)
    p = plan_truncation(SPEC, budget=6, **lengths)
    assert (p.evidence, p.user, p.history, p.cut_at) == (1, False, 0, 6)
