"""Case records -> padded arrays: ids [lists, candidates, length], features [lists, candidates, width],
labels [lists]. Every list of a file must have the same number of candidates (the export's `candidates`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .prompt import CaseEncoder


@dataclass
class Encoded:
    ids: np.ndarray  # int32 [N, C, L], 0-padded ([PAD] is id 0)
    lengths: np.ndarray  # int32 [N, C]
    features: np.ndarray  # float32 [N, C, F]
    labels: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)


def encode_records(records: Sequence[dict[str, Any]], encoder: CaseEncoder, progress: bool = False) -> Encoded:
    if not records:
        raise ValueError("no cases to encode")
    c = len(records[0]["case"]["candidates"])
    n, width, length = len(records), encoder.spec.feature_width, encoder.max_length
    ids = np.zeros((n, c, length), dtype=np.int32)
    lengths = np.zeros((n, c), dtype=np.int32)
    features = np.zeros((n, c, width), dtype=np.float32)
    labels = np.zeros(n, dtype=np.int64)
    start = time.time()
    for i, r in enumerate(records):
        case = r["case"]
        if len(case["candidates"]) != c:
            raise ValueError(f"case {case['eventId']} has {len(case['candidates'])} candidates, expected {c}")
        _, rows, feats = encoder.encode_case(case)
        for j, row in enumerate(rows):
            ids[i, j, : len(row)] = row
            lengths[i, j] = len(row)
        features[i] = feats
        labels[i] = r["label"]
        if progress and (i + 1) % 5000 == 0:
            print(f"  encoded {i + 1}/{n} cases ({(i + 1) / (time.time() - start):.0f}/s)", flush=True)
    return Encoded(ids, lengths, features, labels)
