#!/usr/bin/env bash
# The distillation claim on a real data set, in one command: teacher trajectories on train cases, STAR trained
# four ways, and the evaluation harness with every system (the teacher included) on the same test cases.
#
#   npm run distill:report -- ml-100k            (or: bash scripts/distill-report.sh DATASET)
#
# Steps (each is skipped when its output exists, so a stopped run resumes; delete WORK to start over):
#   1. starstream cases export --teacher-budget-s $TRAIN_TEACHER_S: the paper-protocol cases (train and test,
#      split by time) and, in the same replay, the teacher on a sample of train cases → labelled data set
#   2. trainer, outcomes only (--no-teacher), stage 1 then GRPO → models outcomes (stage 1) and outcomes-grpo
#   3. trainer with the teacher's trajectories, stage 1 then GRPO → models stage-1 and stage-2
#   4. starstream eval with the four models and the teacher on a sample sized to $EVAL_TEACHER_S
#      → bench/results/eval-DATASET.{md,json,svg}; the trainers' reports sit beside it (distill-DATASET.json)
#
# Settings (env): WORK (default .data/distill-report-DATASET), TRAIN_TEACHER_S (3000), EVAL_TEACHER_S (1800),
# PRESET (cpu), EPOCHS (2), GRPO_MAX_CASES (8000), SEED (1), STREAM_EVERY (20: four STAR models on every 4th event would add half an hour on 2 cores); teacher.* and sampling.dataset.*
# come from the usual config (STARSTREAM_TEACHER__LLM__…, e.g. the openai backend for a hosted model).
# The trajectories are kept whatever the teacher's rank of the true item (sampling.dataset.keep=all): the
# soft teacher target is the point; set STARSTREAM_SAMPLING__DATASET__KEEP=top1 to keep only its hits.
set -euo pipefail
cd "$(dirname "$0")/.."

DATASET=${1:-ml-100k}
NAME=$(basename "$DATASET" | tr -c 'A-Za-z0-9._\n-' '_')
WORK=${WORK:-.data/distill-report-$NAME}
TRAIN_TEACHER_S=${TRAIN_TEACHER_S:-3000}
EVAL_TEACHER_S=${EVAL_TEACHER_S:-1800}
PRESET=${PRESET:-cpu}
EPOCHS=${EPOCHS:-2}
GRPO_MAX_CASES=${GRPO_MAX_CASES:-8000}
SEED=${SEED:-1}
STREAM_EVERY=${STREAM_EVERY:-20}
PY=train/.venv/bin/python
export STARSTREAM_SAMPLING__DATASET__KEEP=${STARSTREAM_SAMPLING__DATASET__KEEP:-all}

[ -x "$PY" ] || { echo "distill-report: the trainer is not installed: bash train/install.sh" >&2; exit 1; }
mkdir -p "$WORK"
step() { echo "== distill-report [$DATASET]: $* ($(date -u +%H:%M:%S))" >&2; }

if [ ! -f "$WORK/cases.jsonl.meta.json" ]; then
  step "1/4 cases + teacher trajectories on train cases (budget ${TRAIN_TEACHER_S}s)"
  rm -rf "$WORK/trajectories"
  node --import tsx src/cli/index.ts cases export --dataset "$DATASET" --out "$WORK/cases.jsonl" --seed "$SEED" \
    --teacher-budget-s "$TRAIN_TEACHER_S" --trajectories "$WORK/trajectories" > "$WORK/cases.report.json"
fi

train() { # out stage1-out report [trainer args…]
  local out=$1 s1=$2 report=$3
  shift 3
  "$PY" -m starstream_train distill --cases "$WORK/cases.jsonl" --out "$out.tmp" --stage1-out "$s1.tmp" \
    --preset "$PRESET" --report "$report" --set "epochs=$EPOCHS" "grpo_max_cases=$GRPO_MAX_CASES" "$@"
  rm -rf "$out" "$s1" && mv "$s1.tmp" "$s1" && mv "$out.tmp" "$out"
}

if [ ! -d "$WORK/outcomes-grpo" ]; then
  step "2/4 STAR on outcomes only, stage 1 then GRPO"
  train "$WORK/outcomes-grpo" "$WORK/outcomes" "$WORK/outcomes.report.json" --no-teacher
fi
if [ ! -d "$WORK/stage-2" ]; then
  step "3/4 STAR distilled: teacher trajectories + outcomes, stage 1 then GRPO"
  train "$WORK/stage-2" "$WORK/stage-1" "$WORK/distilled.report.json" --trajectories "$WORK/trajectories"
fi

step "4/4 evaluation: every system on the same cases, the teacher within ${EVAL_TEACHER_S}s"
node --import tsx src/cli/index.ts eval --dataset "$DATASET" --seed "$SEED" --stream-every "$STREAM_EVERY" \
  --star "outcomes=$WORK/outcomes" --star "outcomes+GRPO=$WORK/outcomes-grpo" \
  --star "stage-1=$WORK/stage-1" --star "stage-2=$WORK/stage-2" \
  --teacher-budget-s "$EVAL_TEACHER_S" --out bench/results
node -e '
  const fs = require("fs");
  const [work, name] = process.argv.slice(1);
  const read = (f) => JSON.parse(fs.readFileSync(`${work}/${f}`, "utf8"));
  const pick = (r) => ({ stage1_test: r.stage1_test, test: r.test, trajectories: r.trajectories, seconds: r.seconds, config: r.config, stage2_history: r.stage2_history });
  const out = { cases: read("cases.report.json"), outcomes: pick(read("outcomes.report.json")), distilled: pick(read("distilled.report.json")) };
  fs.writeFileSync(`bench/results/distill-${name}.json`, JSON.stringify(out, null, 2) + "\n");
' "$WORK" "$NAME"
step "done: bench/results/eval-$NAME.{md,json,svg}, bench/results/distill-$NAME.json"
