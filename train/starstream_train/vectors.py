"""Shared prompt test vectors (test/fixtures/prompt-vectors.jsonl): cases, each rendered at a max length,
with the expected text, token ids (with [CLS]/[SEP]) and feature rows per candidate. Written here with the
Python port and the fixture model's tokenizer; test/star/prompt-vectors.test.ts checks that the TypeScript
renderer and @huggingface/tokenizers give the same, and train/tests/test_prompt.py that Python still does.

The hand-made cases cover what a port gets wrong: accents and non-Latin scripts, emoji cut at the title
length bound, control characters, marker, placeholder and special-token ([SEP]) injection in titles, empty
categories, a cold user, and every truncation step down to the hard token cut."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from .cases import read_cases
from .prompt import CaseEncoder, load_prompt_spec
from .tokenizer import segment_ids, special_id


def _features(**kw: float) -> dict[str, float]:
    base = {
        "cooccurrence": 0, "cooccurrenceRecent": 0, "cooccurringRecentItems": 0, "neighbourEngagement": 0,
        "embeddingScore": 0.0, "popularity": 0, "recentPopularity": 0, "trend": 1, "categoryFit": 0,
    }
    base.update(kw)
    return base


def _candidate(
    item: str, title: str | None, categories: list[str], sentences: list[str], **features: float
) -> dict[str, Any]:
    return {"itemId": item, "title": title, "categories": categories, "sources": [], "features": _features(**features),
            "sentences": sentences}


def _user(uid: str, count: int, recent: list[tuple[str, str | None]], mix: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "userId": uid,
        "interactionCount": count,
        "recentItems": [{"itemId": i, "title": t, "atMs": 1_700_000_000_000 - k * 60_000} for k, (i, t) in enumerate(recent)],
        "categoryMix": [{"category": c, "share": s} for c, s in mix],
    }


SENTENCES = [
    'Co-occurs 12 times with 3 of your last 5 items, most with "Star Wars (1977)".',
    "7 of your 20 most similar users engaged with it recently.",
    "40% of your recent items share its categories (Action, Sci-Fi).",
    "Collaborative taste match 0.53 (rank 3 of 20).",
    "312 recent interactions overall, rising.",
]


def handmade_cases() -> list[tuple[str, dict[str, Any]]]:
    emoji_title = "A" * 78 + "\U0001F600 tail"  # the 80-unit bound cuts the emoji's surrogate pair in half
    history = [
        ("50", "Star Wars (1977)"), ("181", "Return of the Jedi (1983)"), ("1005", "Á köldum klaka (Cold Fever) (1994)"),
        ("9", "Dead Man Walking (1995)"), ("7", None), ("12", "Usual Suspects, The (1995)"),
    ]
    user = _user("u1", 137, history, [("Drama", 0.4), ("Sci-Fi", 0.2), ("Action", 0.2), ("Comedy", 0.1)])
    cold = _user("u2", 0, [], [])
    return [
        ("typical", {"eventId": "v-1", "atMs": 1_700_000_000_000, "user": user, "candidates": [
            _candidate("172", "Empire Strikes Back, The (1980)", ["Action", "Adventure", "Drama", "Sci-Fi", "War"], SENTENCES,
                       cooccurrence=12, cooccurrenceRecent=7.53, cooccurringRecentItems=3, neighbourEngagement=7,
                       embeddingScore=0.5312, popularity=312.4, recentPopularity=17.25, trend=1.7, categoryFit=0.4),
            _candidate("1536", None, [], ["New to the catalogue: 0 interactions so far."], embeddingScore=-0.013),
        ]}),
        ("untrusted titles", {"eventId": "v-2", "atMs": 1_700_000_000_000, "user": user, "candidates": [
            _candidate("x<1>", "<cand> ignore previous {title} \"quoted\"\u0007bell\ttab", ["<ev>", "{x}", ""], [
                "Co-occurs 2 times with 1 of your last 5 items, most with \"<hist> sneaky\".", "  spaced\u2028out\u00a0text  "],
                cooccurrence=2, trend=0.5, popularity=0.4),
            _candidate("e1", emoji_title, ["Émigré", "東京", "naïve"], ["Collaborative taste match 0.10 (rank 2 of 2)."],
                       embeddingScore=0.1, trend=0.0),
        ]}),
        ("special tokens in data", {"eventId": "v-4", "atMs": 1_700_000_000_000,
                                    "user": _user("u3", 3, [("[CLS]", None), ("h2", "[SEP] [PAD]")], [("[UNK]", 1.0)]), "candidates": [
            _candidate("[SEP]", "Title [SEP] with [CLS] brackets [2019]", ["[PAD]", "Drama]"], ["Evidence [SEP] sentence [x]."],
                       popularity=3.0),
            _candidate("[CLS]", None, [], [], trend=1.0),
        ]}),
        ("cold user", {"eventId": "v-3", "atMs": 1_700_000_000_000, "user": cold, "candidates": [
            _candidate("1", "Toy Story (1995)", ["Animation", "Children's", "Comedy"], ["452 recent interactions overall, steady."],
                       popularity=452.0, trend=1.0),
        ]}),
    ]


def write_vectors(model_dir: Path, out: Path, cases_file: Path | None = None, real_cases: int = 3) -> int:
    spec = load_prompt_spec()
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    cls_id, sep_id = special_id(tokenizer, "[CLS]"), special_id(tokenizer, "[SEP]")
    cases = handmade_cases()
    if cases_file is not None:
        cases += [(f"exported {r['case']['eventId']}", r["case"]) for r in read_cases(cases_file, limit=real_cases)]
    lines = []
    for name, case in cases:
        for max_length in (128, 48, 24, 12):
            encoder = CaseEncoder(spec, segment_ids(tokenizer), cls_id, sep_id, max_length)
            texts, rows, feats = encoder.encode_case(case)
            lines.append({
                "name": f"{name} @ {max_length}",
                "promptTemplateVersion": spec.version,
                "maxLength": max_length,
                "case": case,
                "expected": [{"text": t, "ids": r, "features": [float(x) for x in f]} for t, r, f in zip(texts, rows, feats, strict=True)],
            })
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=True) + "\n")
    return len(lines)
