import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CaseRecord } from '../../src/cli/cases.ts';
import { repoRoot } from '../../src/data/datasets.ts';
import type { LabelledTrajectory } from '../../src/domain/teacher.ts';
import { runDistill } from '../../src/distill/run.ts';
import { StarRegistry } from '../../src/star/registry/registry.ts';
import { labelTrajectory } from '../../src/teacher/dataset/label.ts';
import { eventually } from '../helpers.ts';
import { FIXTURE_MODEL, registryOptions, tempRegistry } from '../star/helpers.ts';
import { writeSyntheticCases } from '../star/fixture-cases.ts';
import { trajectory } from '../teacher/case-fixtures.ts';
import { baseOptions, tempDir, writeDataset } from './helpers.ts';

/**
 * The whole loop with the real Python trainer (`train/.venv`, installed by `bash train/install.sh`; CI's
 * `.ci/run` does): a small synthetic stream's cases split into teacher trajectories (written by the real
 * dataset writer) and an outcome-only case file → `runDistill` → trainer `distill` (tiny preset, stage 1 and
 * GRPO) → held-out evaluation against the serving champion (the committed tiny model) → publish → a serving
 * registry polling `CURRENT` hot-reloads the new version. About 15–30 s on 2 cores.
 */

const PYTHON = join(repoRoot(), 'train', '.venv', 'bin', 'python');
const skip = existsSync(PYTHON) ? false : `${PYTHON} is absent: install the trainer with bash train/install.sh`;
if (skip) process.stderr.write(`distill e2e skipped: ${skip}\n`);

/** A teacher that ranks the observed item first on two cases in three, third otherwise. */
function asTrajectory(r: CaseRecord, k: number): LabelledTrajectory {
  const c = r.case;
  const ids = c.candidates.map((x) => x.itemId);
  const others = ids.filter((id) => id !== r.itemId);
  const ranking = k % 3 === 2 ? [...others.slice(0, 2), r.itemId, ...others.slice(2)] : [r.itemId, ...others];
  const teacherCase = {
    caseId: `case-${c.eventId}`,
    eventId: c.eventId,
    atMs: c.atMs,
    reason: 'uniform' as const,
    margin: null,
    user: c.user,
    candidates: c.candidates,
    studentScores: c.candidates.map(() => 0),
    studentModel: 'baseline-2',
    templateVersion: 'cst-1',
  };
  const outcome = { status: 'observed' as const, nextItemId: r.itemId, observedAtMs: c.atMs, studentRank: ids.indexOf(r.itemId) + 1 };
  return labelTrajectory(trajectory(teacherCase.caseId, ranking), { case: teacherCase, outcome });
}

// The timeout only guards against a hang: a loaded machine runs this several times slower than an idle one.
test('distill end to end: real trainer, held-out evaluation, atomic publish, hot reload', { skip, timeout: 900_000 }, async (t) => {
  const work = tempDir('distill-e2e-');
  const registry = tempRegistry(['champion-1']);
  const serving = await StarRegistry.open(registryOptions(registry.dir, { pollMs: 50, retireGraceMs: 0 }));
  try {
    const all = join(work.dir, 'all-cases.jsonl');
    await writeSyntheticCases(all, 3000);
    const records = readFileSync(all, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as CaseRecord);
    // Every other case becomes a teacher trajectory; the rest is the outcome-only case file.
    const dataset = join(work.dir, 'dataset');
    await writeDataset(dataset, records.filter((_, i) => i % 2 === 0).map(asTrajectory), 100);
    const casesFile = join(work.dir, 'cases.jsonl');
    writeFileSync(casesFile, `${records.filter((_, i) => i % 2 === 1).map((r) => JSON.stringify(r)).join('\n')}\n`);

    const lines: string[] = [];
    const stateDir = join(work.dir, 'state');
    const opts = {
      ...baseOptions({ stateDir, registryDir: registry.dir, trajectoriesDir: dataset, casesFile }),
      holdoutShare: 0.15,
      minHoldoutCases: 20,
      // The tiny model may not beat the committed one on so little data; this test is about the plumbing,
      // the gate itself is tested in gate.test.ts.
      margin: -1,
      trainerSettings: {
        epochs: 1,
        threads: 1,
        batch_lists: 8,
        grpo_batch_lists: 8,
        grpo_group: 4,
        tokenizer: join(FIXTURE_MODEL, 'tokenizer.json'),
      },
      progress: (line: string) => lines.push(line),
    };
    const report = await runDistill(opts);
    t.diagnostic(report.summary);
    assert.equal(report.decision, 'published', `${report.summary}\n${lines.slice(-20).join('\n')}`);
    assert.ok(lines.some((l) => l.startsWith('trainer: ')), 'trainer progress was passed through');
    assert.equal(report.holdout?.source, 'cases');
    assert.ok(report.holdout!.cases >= 20);
    assert.equal(report.champion?.version, 'star-champion-1');
    for (const side of [report.champion!, report.challenger!]) {
      const m = side.metrics!;
      assert.equal(m.cases, report.holdout!.cases);
      assert.ok(m.hr1 <= m.hr3 && m.hr3 <= m.hr5 && m.hr5 <= 1);
      assert.ok(Math.abs(m.avgHr - (m.hr1 + m.hr3 + m.hr5) / 3) < 1e-12);
    }
    assert.ok(report.challenger!.parity!.cases > 0, 'the challenger passed the parity check');
    assert.ok(report.challenger!.trainerMetrics && 'validation_avg' in report.challenger!.trainerMetrics);
    assert.ok(report.data.training!.trajectories.trained > 0 && report.data.training!.cases.trained > 0);

    // Hot reload: the serving registry polls CURRENT and swaps to the published version.
    const version = report.published!.version;
    await eventually(() => serving.version === `star-${version}`, 20_000);
    const [scores] = await serving.current().score([records[records.length - 1]!.case]);
    assert.equal(scores!.length, records[records.length - 1]!.case.candidates.length);

    const again = await runDistill(opts);
    assert.equal(again.decision, 'skipped');
    assert.match(again.summary, /no new data/);
  } finally {
    await serving.close();
    registry.cleanup();
    work.cleanup();
  }
});
