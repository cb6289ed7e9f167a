"""Hostile input for the labelled-trajectory reader (`starstream_train.labelled`), the Python side of
test/fuzz/trajectory-files.fuzz.test.ts: valid data sets (the shared fixture's records) with lines mutated
(values replaced by hostile ones, keys deleted), truncated, spliced, not UTF-8, with a BOM, nested 100k deep,
with huge numbers, repeated; and manifests that lie (missing files, paths out of the directory, another schema
version, not JSON, not an object, wrong types). Plain `random` with fixed seeds (no hypothesis here).

Contract: `read_labelled` and `to_records` return valid training input or raise `TrajectoryFileError` naming
the file (and line); never a KeyError, TypeError, UnicodeDecodeError, RecursionError or a bare JSON error.
"""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import make_labelled_trajectories

from starstream_train.labelled import TrajectoryFileError, read_labelled, read_manifest, to_records

RUNS = 250
SEED = 9_600

HOSTILE: list[Any] = [
    None, True, 0, -1, 1.5, 10**400, -(10**30), "", "NaN", "Infinity", "\u0000", "\ud800", "<cand>", "[SEP]",
    "../../etc/passwd", [], {}, [[[[1]]]], {"itemId": 1}, ["a", 1, None], {"__proto__": {}}, "x" * 10_000,
]
# Tokens Python's json accepts but other readers do not.
RAW_HOSTILE = ["NaN", "Infinity", "-Infinity", "1e999", "-0", "123456789012345678901234567890"]


def _paths(v: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _paths(x, prefix + (i,))
    return out


def mutate(value: Any, rnd: random.Random) -> Any:
    """One value replaced by a hostile one, or one key / element removed."""
    value = copy.deepcopy(value)
    path = rnd.choice(_paths(value))
    if not path:
        return rnd.choice(HOSTILE)
    parent = value
    for k in path[:-1]:
        parent = parent[k]
    if rnd.random() < 0.3:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rnd.choice(HOSTILE))
    return value


def broken_line(good: list[str], rnd: random.Random) -> bytes:
    line = rnd.choice(good)
    kind = rnd.randrange(9)
    if kind == 0:
        return line.encode()[: rnd.randrange(len(line))]  # truncated (maybe inside a UTF-8 sequence)
    if kind == 1:
        other = rnd.choice(good)
        return (line[: rnd.randrange(len(line))] + other[rnd.randrange(len(other)):]).encode()  # spliced
    if kind == 2:
        b = bytearray(line.encode())
        b[rnd.randrange(len(b))] = rnd.choice([0xFF, 0xC3, 0x80, 0xED])  # not UTF-8
        return bytes(b)
    if kind == 3:
        return b"\xef\xbb\xbf" + line.encode()  # BOM
    if kind == 4:
        return b"[" * 100_000 + b"]" * 100_000  # nested deeper than the decoder's recursion limit
    if kind == 5:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 60))).replace(b"\n", b" ")
    if kind == 6:
        return rnd.choice(RAW_HOSTILE).encode()
    if kind == 7:
        # A raw token where a number or a string was.
        return line.replace('"atMs": ', f'"atMs": {rnd.choice(RAW_HOSTILE)}, "x": ', 1).encode()
    return json.dumps(rnd.choice(HOSTILE)).encode()


def write_dataset(root: Path, rnd: random.Random, records: list[dict]) -> Path:
    d = root / f"ds{rnd.randrange(10**9)}"
    d.mkdir()
    good = [json.dumps(r) for r in records]
    parts: dict[str, tuple[str, list[bytes]]] = {}
    for k in range(rnd.randrange(1, 4)):
        lines: list[bytes] = []
        for _ in range(rnd.randrange(0, 6)):
            roll = rnd.random()
            if roll < 0.45:
                lines.append(rnd.choice(good).encode())
            elif roll < 0.75:
                lines.append(json.dumps(mutate(rnd.choice(records), rnd)).encode())
            elif roll < 0.95:
                lines.append(broken_line(good, rnd))
            else:
                lines.append(b"")
        if rnd.random() < 0.2 and lines:
            lines.append(lines[0])  # a caseId again (written at least once)
        name = f"{rnd.choice(['kept', 'rejected'])}-{k + 1:06d}.jsonl"
        parts[name] = ("kept" if name.startswith("kept") else "rejected", lines)
        (d / name).write_bytes(b"\n".join(lines) + (b"\n" if rnd.random() < 0.8 else b""))
    manifest: Any = {
        "schemaVersion": "labelled-trajectory-1", "updatedAtMs": 0, "filter": {"keep": "all", "k": 5},
        "teacherModels": {}, "counts": {"kept": 0, "rejected": 0},
        "files": [{"path": n, "split": s, "records": len(ls), "fromMs": 0, "toMs": 0} for n, (s, ls) in parts.items()],
    }
    roll = rnd.random()
    if roll < 0.55:
        text = json.dumps(manifest).encode()
    elif roll < 0.8:
        text = json.dumps(mutate(manifest, rnd)).encode()
    else:
        lie = rnd.randrange(8)
        if lie == 0:
            manifest["files"].append({"path": "kept-999999.jsonl", "split": "kept", "records": 1, "fromMs": 0, "toMs": 0})
        elif lie == 1:
            bad_path = rnd.choice(["../outside.jsonl", "/etc/passwd", "..", "a/b.jsonl", "a\\b", "x\u0000y"])
            manifest["files"].append({"path": bad_path, "split": "kept"})
        elif lie == 2:
            manifest["schemaVersion"] = rnd.choice(["labelled-trajectory-2", 1, None, ["x"]])
        elif lie == 3:
            manifest["files"] = rnd.choice(["kept-000001.jsonl", {"path": "x"}, 3, [None], [["kept-000001.jsonl"]]])
        elif lie == 4:
            manifest = rnd.choice([None, [], "manifest", 1])
        elif lie == 5:
            for f in manifest["files"]:
                f["split"] = rnd.choice(["kept ", "KEPT", None, 1, ["kept"]])
        if lie == 6:
            text = json.dumps(manifest).encode()[: rnd.randrange(1, 40)]
        elif lie == 7:
            text = b"\xff\xfe" + json.dumps(manifest).encode()
        else:
            text = json.dumps(manifest).encode()
    if rnd.random() < 0.9:
        (d / "manifest.json").write_bytes(text)
    return d


def check_training_input(items: list[dict]) -> None:
    ids = [t["case"]["caseId"] for t in items if t["case"].get("caseId") is not None]
    assert len(ids) == len(set(ids)), "each caseId once"
    assert [t["case"]["atMs"] for t in items] == sorted(t["case"]["atMs"] for t in items)
    for max_rank in (None, 3):
        records, stats = to_records(items, max_teacher_rank=max_rank)
        assert stats.get("read", 0) == len(items)
        for r in records:
            n = len(r["case"]["candidates"])
            assert -1 <= r["label"] < n
            assert r["teacher"] is None or len(r["teacher"]) == n


@pytest.mark.parametrize("splits", [("kept",), ("kept", "rejected")])
def test_hostile_data_sets_give_training_input_or_a_trajectory_file_error(tmp_path, splits):
    rnd = random.Random(SEED + len(splits))
    records = make_labelled_trajectories()
    outcomes = {"ok": 0, "refused": 0}
    for run in range(RUNS):
        d = write_dataset(tmp_path, rnd, records)
        target = d if rnd.random() < 0.8 else next(iter(sorted(d.glob("*.jsonl"))), d)
        try:
            items = read_labelled(target, splits)
            check_training_input(items)
            outcomes["ok"] += 1
        except TrajectoryFileError as e:
            outcomes["refused"] += 1
            assert str(d) in str(e), f"run {run}: the error names the file: {e}"
        except Exception as e:  # noqa: BLE001 - the property: nothing else escapes
            pytest.fail(f"seed {SEED + len(splits)}, run {run}, {target}: {type(e).__name__}: {str(e)[:300]}")
    assert outcomes["ok"] > 20 and outcomes["refused"] > 20, outcomes


def test_regressions(tmp_path):
    """Each raised something other than TrajectoryFileError before the reader checked it."""
    good = make_labelled_trajectories(3)

    def dataset(name: str, manifest: bytes | None, lines: list[bytes]) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "kept-000001.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        if manifest is not None:
            (d / "manifest.json").write_bytes(manifest)
        return d

    def manifest(files: Any) -> bytes:
        return json.dumps({"schemaVersion": "labelled-trajectory-1", "files": files}).encode()

    ok = [{"path": "kept-000001.jsonl", "split": "kept"}]
    line = json.dumps(good[0]).encode()
    cases = {
        "manifest-not-json": (b"{", [line]),  # JSONDecodeError
        "manifest-null": (b"null", [line]),  # AttributeError
        "manifest-not-utf8": (b'{"files": "\xff"}', [line]),  # UnicodeDecodeError
        "manifest-file-not-object": (manifest(["kept-000001.jsonl"]), [line]),  # TypeError
        "manifest-file-path-number": (manifest([{"path": 1, "split": "kept"}]), [line]),  # TypeError
        "manifest-outside": (manifest([{"path": "../kept-000001.jsonl", "split": "kept"}]), [line]),  # read outside
        "line-not-utf8": (manifest(ok), [line, b'{"case": "\xff"}']),  # UnicodeDecodeError
        "line-deep": (manifest(ok), [b"[" * 100_000 + b"]" * 100_000]),  # RecursionError
        "candidate-not-object": (manifest(ok), [line.replace(b'"candidates": [{', b'"candidates": [1, {', 1)]),  # TypeError
        # TypeError
        "ranking-of-objects": (manifest(ok), [json.dumps({**good[0], "trajectory": {**good[0]["trajectory"], "ranking": [{}]}}).encode()]),
        # TypeError in sort
        "atMs-text": (manifest(ok), [line, json.dumps({**good[1], "case": {**good[1]["case"], "atMs": "soon"}}).encode()]),
        # TypeError unhashable
        "caseId-list": (manifest(ok), [json.dumps({**good[0], "case": {**good[0]["case"], "caseId": ["x"]}}).encode()]),
        "teacherRank-text": (manifest(ok), [json.dumps({**good[0], "teacherRank": "1"}).encode()]),  # TypeError in to_records
    }
    for name, (m, lines) in cases.items():
        d = dataset(name, m, lines)
        with pytest.raises(TrajectoryFileError) as e:
            to_records(read_labelled(d), max_teacher_rank=3)
        assert str(d) in str(e.value), (name, str(e.value))
    # The valid fixture still reads, and a manifest without files still falls back to the *.jsonl files.
    d = dataset("fine", None, [json.dumps(r).encode() for r in good])
    assert len(read_labelled(d, ("kept", "rejected"))) == 3
    assert read_manifest(d) is None
