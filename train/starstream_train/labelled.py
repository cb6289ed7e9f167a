"""Reads labelled teacher trajectories and turns them into training lists.

The data set is JSON lines of `LabelledTrajectory` (src/domain/teacher.ts), one per line:
`{"case": TeacherCase, "trajectory": Trajectory, "outcome": CaseOutcome, "teacherRank": int | null}`, written
by the teacher's dataset export (src/teacher/dataset/writer.ts) as rotating files beside a `manifest.json`
(schema version, keep filter, counts, time range, and the final files with their split, `kept` or
`rejected`). `read_labelled` takes one JSON-lines file, or a dataset directory: the files its manifest lists
for the wanted splits (default: `kept`, the training data), or, without a manifest, every `*.jsonl` in it
(parts still being written end in `.jsonl.open` and are never read). Records are written at least once, so
a `case.caseId` seen before is skipped. A manifest or a line that is not what it should be (not UTF-8, not
JSON, too deep, another shape, a manifest listing files that are missing or outside the directory) raises
`TrajectoryFileError` naming the file and line; nothing is skipped silently (tests/test_labelled_fuzz.py).

How a labelled trajectory becomes a training list (`to_records`):

- the list is the case's candidate list, as the pipeline retrieved and the teacher saw it, with the same CST
  evidence (rendered by the prompt spec like any case);
- the **teacher target** is the teacher's final ranking: candidate at rank r (1-based) gets the target score
  -(r - 1), candidates the ranking leaves out share the score of the rank after its last one, ids in the
  ranking that are not candidates are ignored; training turns the scores into a distribution with
  softmax(score / teacher_temperature);
- the **hard target** is the observed next item's index among the candidates. The case is sampled before the
  outcome is known, so the observed item is often not a candidate (`outcome.studentRank` null) or the outcome
  expired; such lists have no hard target (label -1) and, by default (`absent_outcome="teacher"`), are kept
  with the teacher target only: a ranking of plausible items by a stronger model is still a listwise signal
  about them. `absent_outcome="drop"` drops them. They never enter stage 2, whose reward needs the observed
  item in the list, nor validation.
- failed runs (status `failed` or an empty ranking) are skipped; `max_teacher_rank=k` keeps only
  trajectories whose ranking put the observed item within the top k (the export's outcome filter may already
  have done this; null `teacherRank` fails the filter).
"""
from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCORING_CASE_KEYS = ("eventId", "atMs", "user", "candidates")


class TrajectoryFileError(ValueError):
    pass


SCHEMA_VERSION = "labelled-trajectory-1"
MANIFEST_FILE = "manifest.json"


SPLITS = ("kept", "rejected")


def _loads(text: str) -> Any:
    """json.loads whose every failure is a ValueError: deep nesting raises RecursionError in the decoder."""
    try:
        return json.loads(text)
    except RecursionError as e:
        raise ValueError("nested too deeply") from e


def read_manifest(path: Path | str) -> dict[str, Any] | None:
    """The data set's manifest, or None without one; a manifest that is not one raises TrajectoryFileError."""
    p = Path(path)
    m = p / MANIFEST_FILE
    if not p.is_dir() or not m.is_file():
        return None
    try:
        manifest = _loads(m.read_bytes().decode("utf-8"))
    except ValueError as e:  # not UTF-8 (UnicodeDecodeError), not JSON, too deep
        raise TrajectoryFileError(f"{m}: not a JSON manifest: {e}") from e
    if not isinstance(manifest, dict):
        raise TrajectoryFileError(f"{m}: not an object")
    version = manifest.get("schemaVersion")
    if version is not None and version != SCHEMA_VERSION:
        raise TrajectoryFileError(f"{m}: schema {str(version)[:60]}, this reader knows {SCHEMA_VERSION}")
    files = manifest.get("files")
    if files is not None:
        if not isinstance(files, list):
            raise TrajectoryFileError(f"{m}: files is not a list")
        for k, f in enumerate(files):
            if not isinstance(f, dict) or not _file_name(f.get("path")) or f.get("split") not in SPLITS:
                raise TrajectoryFileError(f"{m}: files[{k}] is not a file name in the data set with a split (kept or rejected)")
    return manifest


def _file_name(name: Any) -> bool:
    """A plain file name inside the data set directory: a manifest never points out of it."""
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def dataset_files(path: Path | str, splits: tuple[str, ...] = ("kept",)) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        manifest = read_manifest(p)
        if manifest is not None and isinstance(manifest.get("files"), list):
            files = [p / f["path"] for f in manifest["files"] if f["split"] in splits]
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise TrajectoryFileError(f"{p}: the manifest lists {missing[0].name}, which is not there")
            return files
        files = sorted(f for f in p.glob("*.jsonl") if f.is_file())
        if not files:
            raise TrajectoryFileError(f"{p}: no *.jsonl files")
        return files
    if not p.is_file():
        raise TrajectoryFileError(f"{p}: no such file or directory")
    return [p]


def iter_labelled(path: Path | str, splits: tuple[str, ...] = ("kept",)) -> Iterable[dict[str, Any]]:
    seen: set[str] = set()
    for f in dataset_files(path, splits):
        # Bytes, decoded line by line: a line that is not UTF-8 is refused with its place.
        with open(f, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise TrajectoryFileError(f"{f}:{n}: not UTF-8: {e}") from e
                if not line.strip():
                    continue
                try:
                    item = _loads(line)
                except ValueError as e:  # JSONDecodeError, too deep
                    raise TrajectoryFileError(f"{f}:{n}: not JSON: {e}") from e
                _check(item, f"{f}:{n}")
                case_id = item["case"].get("caseId")
                if case_id is not None:
                    if case_id in seen:
                        continue
                    seen.add(case_id)
                yield item


def read_labelled(path: Path | str, splits: tuple[str, ...] = ("kept",)) -> list[dict[str, Any]]:
    """Every labelled trajectory of the data set (once per caseId), in the order of `case.atMs` (stable)."""
    return sorted(iter_labelled(path, splits), key=lambda t: t["case"]["atMs"])


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(item: Any, where: str) -> None:
    """What the reader and `to_records` rely on; anything else is a TrajectoryFileError naming the line."""
    if not isinstance(item, dict):
        raise TrajectoryFileError(f"{where}: not an object")
    for key in ("case", "trajectory", "outcome"):
        if not isinstance(item.get(key), dict):
            raise TrajectoryFileError(f"{where}: missing {key}")
    case, traj, outcome = item["case"], item["trajectory"], item["outcome"]
    for key in SCORING_CASE_KEYS:
        if key not in case:
            raise TrajectoryFileError(f"{where}: case lacks {key}")
    if case.get("caseId") is not None and not isinstance(case["caseId"], str):
        raise TrajectoryFileError(f"{where}: case.caseId is not a string")
    if not _number(case["atMs"]):
        raise TrajectoryFileError(f"{where}: case.atMs is not a finite number")
    if not isinstance(case["user"], dict):
        raise TrajectoryFileError(f"{where}: case.user is not an object")
    if not isinstance(case["candidates"], list):
        raise TrajectoryFileError(f"{where}: case.candidates is not a list")
    if not all(isinstance(c, dict) and isinstance(c.get("itemId"), str) for c in case["candidates"]):
        raise TrajectoryFileError(f"{where}: a candidate is not an object with an itemId")
    if not isinstance(traj.get("ranking"), list) or not all(isinstance(i, str) for i in traj["ranking"]):
        raise TrajectoryFileError(f"{where}: trajectory.ranking is not a list of ids")
    for key in ("status", "serialized"):
        if traj.get(key) is not None and not isinstance(traj[key], str):
            raise TrajectoryFileError(f"{where}: trajectory.{key} is not a string")
    if outcome.get("status") not in ("observed", "expired"):
        raise TrajectoryFileError(f"{where}: outcome.status {str(outcome.get('status'))[:40]!r}")
    if outcome["status"] == "observed" and not isinstance(outcome.get("nextItemId"), str):
        raise TrajectoryFileError(f"{where}: observed outcome without nextItemId")
    rank = item.get("teacherRank")
    if rank is not None and not (isinstance(rank, int) and not isinstance(rank, bool)):
        raise TrajectoryFileError(f"{where}: teacherRank is not an integer or null")


def scoring_case(case: dict[str, Any]) -> dict[str, Any]:
    """The `ScoringCase` part of a `TeacherCase`: what the prompt spec renders and parity.jsonl holds."""
    return {k: case[k] for k in SCORING_CASE_KEYS}


def teacher_scores(candidates: list[dict[str, Any]], ranking: list[str]) -> list[float] | None:
    """Rank-based target score per candidate (-(rank - 1)); None when the ranking names no candidate."""
    index = {c["itemId"]: j for j, c in enumerate(candidates)}
    ranked: list[int] = []
    seen: set[int] = set()
    for item in ranking:
        j = index.get(item)
        if j is not None and j not in seen:
            ranked.append(j)
            seen.add(j)
    if not ranked:
        return None
    scores = [-float(len(ranked))] * len(candidates)
    for r, j in enumerate(ranked):
        scores[j] = -float(r)
    return scores


def observed_index(case: dict[str, Any], outcome: dict[str, Any]) -> int:
    if outcome.get("status") != "observed":
        return -1
    for j, c in enumerate(case["candidates"]):
        if c["itemId"] == outcome["nextItemId"]:
            return j
    return -1


def to_records(
    items: Iterable[dict[str, Any]],
    *,
    use_teacher: bool = True,
    absent_outcome: str = "teacher",
    max_teacher_rank: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Training lists (`data.encode_records` records, plus `source` and `caseId`) and counts of what was used."""
    if absent_outcome not in ("teacher", "drop"):
        raise ValueError(f"absent_outcome must be teacher or drop, not {absent_outcome!r}")
    stats: Counter[str] = Counter()
    out = []
    for item in items:
        case, traj, outcome = item["case"], item["trajectory"], item["outcome"]
        stats["read"] += 1
        if traj.get("status", "completed") != "completed" or not traj["ranking"] or not case["candidates"]:
            stats["skipped_failed"] += 1
            continue
        rank = item.get("teacherRank")
        if max_teacher_rank is not None and (rank is None or rank > max_teacher_rank):
            stats["skipped_filter"] += 1
            continue
        label = observed_index(case, outcome)
        teacher = teacher_scores(case["candidates"], traj["ranking"]) if use_teacher else None
        if label < 0 and (teacher is None or absent_outcome == "drop"):
            stats["skipped_no_target"] += 1
            continue
        stats["lists"] += 1
        stats["with_outcome"] += label >= 0
        stats["with_teacher"] += teacher is not None
        stats["teacher_only"] += label < 0
        out.append({"case": scoring_case(case), "label": label, "teacher": teacher, "source": "teacher",
                    "caseId": case.get("caseId"), "split": "train"})
    return out, dict(stats)
