"""Records -> padded arrays: ids [lists, candidates, length], features [lists, candidates, width], labels
[lists], plus a candidate mask and the teacher's target scores.

A record is a dict with `case` (a ScoringCase) and `label` (index of the observed next item among the
candidates, -1 when it is not one of them), and optionally `teacher` (one rank-based target score per candidate,
see `labelled.teacher_scores`). Case files from `starstream cases export` give lists of one size; teacher cases
carry the pipeline's own candidate lists, whose sizes vary, so lists are padded to the longest and `mask`
says which columns are real candidates."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .prompt import CaseEncoder


@dataclass
class Encoded:
    ids: np.ndarray  # int32 [N, C, L], 0-padded ([PAD] is id 0)
    lengths: np.ndarray  # int32 [N, C]
    features: np.ndarray  # float32 [N, C, F]
    labels: np.ndarray  # int64 [N], -1: the observed item is not a candidate (or there is no outcome)
    #: bool [N, C]: a real candidate (False: padding of a shorter list)
    mask: np.ndarray
    #: float32 [N, C]: the teacher's rank-based target score per candidate (higher is better); 0 where absent
    teacher: np.ndarray
    #: bool [N]: the list has a teacher target
    has_teacher: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def full(self) -> bool:
        """Every list is complete, labelled and without a teacher target: the outcome-only case file."""
        return bool(self.mask.all() and (self.labels >= 0).all() and not self.has_teacher.any())

    def subset(self, rows: np.ndarray) -> Encoded:
        return Encoded(self.ids[rows], self.lengths[rows], self.features[rows], self.labels[rows],
                       self.mask[rows], self.teacher[rows], self.has_teacher[rows])


def encode_records(records: Sequence[dict[str, Any]], encoder: CaseEncoder, progress: bool = False) -> Encoded:
    if not records:
        raise ValueError("no cases to encode")
    c = max(len(r["case"]["candidates"]) for r in records)
    n, width, length = len(records), encoder.spec.feature_width, encoder.max_length
    ids = np.zeros((n, c, length), dtype=np.int32)
    lengths = np.zeros((n, c), dtype=np.int32)
    features = np.zeros((n, c, width), dtype=np.float32)
    labels = np.zeros(n, dtype=np.int64)
    mask = np.zeros((n, c), dtype=bool)
    teacher = np.zeros((n, c), dtype=np.float32)
    has_teacher = np.zeros(n, dtype=bool)
    start = time.time()
    for i, r in enumerate(records):
        case = r["case"]
        k = len(case["candidates"])
        if k == 0:
            raise ValueError(f"case {case.get('eventId')} has no candidates")
        _, rows, feats = encoder.encode_case(case)
        for j, row in enumerate(rows):
            ids[i, j, : len(row)] = row
            lengths[i, j] = len(row)
        features[i, :k] = feats
        mask[i, :k] = True
        labels[i] = r["label"]
        if r.get("teacher") is not None:
            if len(r["teacher"]) != k:
                raise ValueError(f"case {case.get('eventId')}: {len(r['teacher'])} teacher scores for {k} candidates")
            teacher[i, :k] = r["teacher"]
            has_teacher[i] = True
        if progress and (i + 1) % 5000 == 0:
            print(f"  encoded {i + 1}/{n} cases ({(i + 1) / (time.time() - start):.0f}/s)", flush=True)
    # Padding columns get length 1 (one [PAD] token) so that a batch never feeds an all-masked row.
    lengths[~mask] = 1
    return Encoded(ids, lengths, features, labels, mask, teacher, has_teacher)
