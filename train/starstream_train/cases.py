"""Reads case files written by `starstream cases export` (src/cli/cases.ts), one JSON object per line:
{"split": "train"|"test", "label": int, "itemId": str, "case": {"eventId", "atMs", "user", "candidates"}}."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class CaseFileError(ValueError):
    pass


def iter_cases(path: Path | str, split: str | None = None) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CaseFileError(f"{path}:{n}: not JSON: {e}") from e
            for key in ("split", "label", "case"):
                if key not in record:
                    raise CaseFileError(f"{path}:{n}: missing {key}")
            case = record["case"]
            if not 0 <= record["label"] < len(case["candidates"]):
                raise CaseFileError(f"{path}:{n}: label {record['label']} outside the {len(case['candidates'])} candidates")
            if split is None or record["split"] == split:
                yield record


def read_cases(path: Path | str, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    out = []
    for record in iter_cases(path, split):
        out.append(record)
        if limit is not None and len(out) >= limit:
            break
    return out
