#!/usr/bin/env bash
# Rebuilds the committed tiny STAR model (test/fixtures/star-tiny) and the shared prompt test vectors
# (test/fixtures/prompt-vectors.jsonl) from a seeded synthetic case file; no public data set is involved.
# Run after changing the prompt spec, the CST templates or the trainer. Needs train/.venv (train/install.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
mkdir -p .data
node --import tsx test/star/fixture-cases.ts .data/synthetic-cases.jsonl
rm -rf test/fixtures/star-tiny
train/.venv/bin/python -m starstream_train train --cases .data/synthetic-cases.jsonl --out test/fixtures/star-tiny \
  --preset tiny --name star --version tiny-1 --set threads=1
# The trainer's report fields that vary between runs (time, durations) are dropped, so a rebuild diffs cleanly.
train/.venv/bin/python - <<'PY'
import json, pathlib
p = pathlib.Path("test/fixtures/star-tiny/star.json")
m = json.loads(p.read_text())
m.pop("trainedAt", None)
p.write_text(json.dumps(m, indent=2) + "\n")
PY
train/.venv/bin/python -m starstream_train vectors --model test/fixtures/star-tiny --cases .data/synthetic-cases.jsonl \
  --out test/fixtures/prompt-vectors.jsonl
du -sh test/fixtures/star-tiny test/fixtures/prompt-vectors.jsonl
