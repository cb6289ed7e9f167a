"""Python port of the STAR prompt spec renderer (src/star/prompt/render.ts, features.ts, encode.ts).

The TypeScript server and this trainer must produce the same text, the same token ids and the same feature
rows for every case; test/fixtures/prompt-vectors.jsonl holds cases with the expected output and both sides'
tests read it. Every function here mirrors one in TypeScript, including JavaScript's string semantics where
they differ from Python's (UTF-16 lengths, `\\s`, `Math.round`).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROMPT_FILE = REPO_ROOT / "schemas" / "prompt-template.json"
DEFAULT_CST_FILE = REPO_ROOT / "schemas" / "cst-templates.json"

# JavaScript's \s (ECMAScript WhiteSpace + LineTerminator), which differs from Python's str.isspace().
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_SPACES = re.compile(f"[{_JS_SPACE}]+")
# `[]` too: the tokenizer's special tokens ([SEP], [CLS], [PAD], [UNK]) match in raw text like the markers.
_UNSAFE_TITLE = re.compile('[\u0000-\u001f\u007f<>{}"\\[\\]]')
_UNSAFE_TEXT = re.compile("[\u0000-\u001f\u007f<>\\[\\]]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_TITLE_LENGTH = 80


def js_trim(text: str) -> str:
    return re.sub(f"^[{_JS_SPACE}]+|[{_JS_SPACE}]+$", "", text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf16_slice(text: str, end: int) -> str:
    """`text.slice(0, end)` in JavaScript: may cut a surrogate pair, leaving a lone surrogate."""
    return text.encode("utf-16-le", "surrogatepass")[: 2 * end].decode("utf-16-le", "surrogatepass")


def well_formed(text: str) -> str:
    """A lone surrogate becomes U+FFFD (Python strings from JSON hold pairs as one code point)."""
    return _SURROGATE.sub("\ufffd", text)


def js_round(x: float) -> int:
    """JavaScript's Math.round: halves go up (towards +infinity)."""
    r = math.floor(x)
    return int(r + 1 if x - r >= 0.5 else r)


def fmt_int(x: float) -> str:
    return str(js_round(x))


def fmt_percent(share: float) -> str:
    return f"{js_round(share * 100)}%"


def sanitise_title(title: str | None, fallback_id: str) -> str:
    """Port of `sanitiseTitle` (src/stages/evidence/templates.ts)."""
    text = js_trim(_JS_SPACES.sub(" ", _UNSAFE_TITLE.sub(" ", title or "")))
    if utf16_len(text) > MAX_TITLE_LENGTH:
        text = utf16_slice(text, MAX_TITLE_LENGTH - 1) + "\u2026"
    return text if len(text) > 0 else "item " + _UNSAFE_TITLE.sub("", fallback_id)


def clean_sentence(sentence: str) -> str:
    return js_trim(_JS_SPACES.sub(" ", _UNSAFE_TEXT.sub(" ", sentence)))


def fill(template: str, values: dict[str, str]) -> str:
    """Port of `render` (templates.ts): `{name}` placeholders, unknown ones left as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@dataclass(frozen=True)
class PromptSpec:
    raw: dict[str, Any]

    @property
    def version(self) -> str:
        return self.raw["version"]

    @property
    def cst_template_version(self) -> str:
        return self.raw["cstTemplateVersion"]

    @property
    def separator(self) -> str:
        return self.raw["separator"]

    @property
    def segments(self) -> dict[str, str]:
        return self.raw["segments"]

    @property
    def limits(self) -> dict[str, int]:
        return self.raw["limits"]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.raw["truncation"]["steps"]

    @property
    def columns(self) -> list[dict[str, str]]:
        return self.raw["features"]["columns"]

    @property
    def feature_width(self) -> int:
        return len(self.columns)


def load_prompt_spec(path: Path | str = DEFAULT_PROMPT_FILE) -> PromptSpec:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in ("version", "cstTemplateVersion", "separator", "segments", "limits", "truncation", "features"):
        if key not in raw:
            raise ValueError(f"{path}: missing {key}")
    if raw["separator"].strip() != "":
        raise ValueError(f"{path}: separator must be whitespace")
    return PromptSpec(raw)


def load_cst_version(path: Path | str = DEFAULT_CST_FILE) -> str:
    return json.loads(Path(path).read_text(encoding="utf-8"))["version"]


@dataclass(frozen=True)
class UserSegments:
    user: str
    history: list[str]


@dataclass(frozen=True)
class CandidateSegments:
    candidate: str
    evidence: list[str]


@dataclass(frozen=True)
class TruncationPlan:
    evidence: int
    user: bool
    history: int
    cut_at: int | None


def render_user_segments(spec: PromptSpec, user: dict[str, Any]) -> UserSegments:
    mix = ", ".join(
        f"{sanitise_title(m['category'], '?')} {fmt_percent(m['share'])}"
        for m in user["categoryMix"][: spec.limits["maxMixCategories"]]
    )
    interactions = fmt_int(user["interactionCount"])
    if len(mix) > 0:
        line = fill(spec.segments["user"], {"interactions": interactions, "mix": mix})
    else:
        line = fill(spec.segments["userNoMix"], {"interactions": interactions})
    history = [
        well_formed(fill(spec.segments["history"], {"title": sanitise_title(r.get("title"), r["itemId"])}))
        for r in user["recentItems"][: spec.limits["maxHistoryItems"]]
    ]
    return UserSegments(well_formed(line), history)


def render_candidate_segments(spec: PromptSpec, candidate: dict[str, Any]) -> CandidateSegments:
    title = sanitise_title(candidate.get("title"), candidate["itemId"])
    categories = ", ".join(sanitise_title(c, "?") for c in candidate["categories"][: spec.limits["maxCategories"]])
    if len(categories) > 0:
        line = fill(spec.segments["candidate"], {"title": title, "categories": categories})
    else:
        line = fill(spec.segments["candidateNoCategories"], {"title": title})
    sentences = [clean_sentence(s) for s in candidate["sentences"][: spec.limits["maxSentences"]]]
    evidence = [well_formed(fill(spec.segments["evidence"], {"sentence": s})) for s in sentences if len(s) > 0]
    return CandidateSegments(well_formed(line), evidence)


def plan_truncation(
    spec: PromptSpec, candidate: int, evidence: Sequence[int], user: int, history: Sequence[int], budget: int
) -> TruncationPlan:
    n_evidence, n_history, keep_user = len(evidence), len(history), True
    total = candidate + sum(evidence) + user + sum(history)
    for step in spec.steps:
        if total <= budget:
            break
        if step["drop"] == "history":
            while total > budget and n_history > step["keep"]:
                n_history -= 1
                total -= history[n_history]
        elif step["drop"] == "evidence":
            while total > budget and n_evidence > step["keep"]:
                n_evidence -= 1
                total -= evidence[n_evidence]
        elif keep_user and step["keep"] == 0:
            keep_user = False
            total -= user
    return TruncationPlan(n_evidence, keep_user, n_history, budget if total > budget else None)


def join_segments(spec: PromptSpec, c: CandidateSegments, u: UserSegments, plan: TruncationPlan) -> str:
    parts = [c.candidate, *c.evidence[: plan.evidence]]
    if plan.user:
        parts.append(u.user)
    parts.extend(u.history[: plan.history])
    return spec.separator.join(parts)


def feature_row(spec: PromptSpec, user: dict[str, Any], candidate: dict[str, Any]) -> np.ndarray:
    """Port of `writeFeatures` (features.ts): float32, computed in float64 then rounded like Float32Array."""
    out = np.zeros(spec.feature_width, dtype=np.float32)
    feats = candidate["features"]
    for j, col in enumerate(spec.columns):
        name = col["name"]
        if name == "user.interactionCount":
            x = float(user["interactionCount"])
        else:
            v = feats.get(name)
            x = float(v) if isinstance(v, (int, float)) and math.isfinite(v) else 0.0
        kind = col["transform"]
        if kind == "log1p":
            y = math.log1p(max(0.0, x))
        elif kind == "log":
            y = math.log(max(1e-3, x))
        elif kind == "identity":
            y = x
        else:
            raise ValueError(f"unknown transform {kind}")
        out[j] = y
    return out


class CaseEncoder:
    """Port of `CaseEncoder` (encode.ts). `ids` is any callable text -> token ids without special tokens."""

    def __init__(self, spec: PromptSpec, ids: Callable[[str], list[int]], cls_id: int, sep_id: int, max_length: int):
        if max_length < 3:
            raise ValueError("max_length must leave room between [CLS] and [SEP]")
        self.spec = spec
        self._ids = ids
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.max_length = max_length
        self._cache: dict[str, list[int]] = {}

    def segment_ids(self, text: str) -> list[int]:
        hit = self._cache.get(text)
        if hit is None:
            hit = self._ids(text)
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[text] = hit
        return hit

    def render(self, user: dict[str, Any], candidate: dict[str, Any]) -> tuple[str, list[int]]:
        """Text and ids (with [CLS] and [SEP]) of one candidate."""
        u = render_user_segments(self.spec, user)
        return self.render_with(u, candidate)

    def render_with(self, u: UserSegments, candidate: dict[str, Any]) -> tuple[str, list[int]]:
        c = render_candidate_segments(self.spec, candidate)
        cand_ids = self.segment_ids(c.candidate)
        ev_ids = [self.segment_ids(e) for e in c.evidence]
        user_ids = self.segment_ids(u.user)
        hist_ids = [self.segment_ids(h) for h in u.history]
        plan = plan_truncation(
            self.spec,
            len(cand_ids),
            [len(e) for e in ev_ids],
            len(user_ids),
            [len(h) for h in hist_ids],
            self.max_length - 2,
        )
        ids = [*cand_ids]
        for e in ev_ids[: plan.evidence]:
            ids.extend(e)
        if plan.user:
            ids.extend(user_ids)
        for h in hist_ids[: plan.history]:
            ids.extend(h)
        if plan.cut_at is not None:
            ids = ids[: plan.cut_at]
        return join_segments(self.spec, c, u, plan), [self.cls_id, *ids, self.sep_id]

    def encode_case(self, case: dict[str, Any]) -> tuple[list[str], list[list[int]], np.ndarray]:
        """Texts, ids and feature rows of every candidate of a case."""
        u = render_user_segments(self.spec, case["user"])
        texts, rows = [], []
        for cand in case["candidates"]:
            text, ids = self.render_with(u, cand)
            texts.append(text)
            rows.append(ids)
        if case["candidates"]:
            feats = np.stack([feature_row(self.spec, case["user"], c) for c in case["candidates"]])
        else:
            feats = np.zeros((0, self.spec.feature_width), np.float32)
        return texts, rows, feats
