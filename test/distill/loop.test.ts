import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { LabelledTrajectory } from '../../src/domain/teacher.ts';
import { readCursor } from '../../src/distill/cursor.ts';
import { runDistill } from '../../src/distill/run.ts';
import { scanSources } from '../../src/distill/sources.ts';
import { chooseWindow, labelKnownBefore, writeTrainingInput } from '../../src/distill/split.ts';
import type { TrainerRequest } from '../../src/distill/trainer.ts';
import { T0, teacherCase } from '../teacher/case-fixtures.ts';
import { baseOptions, fixtureTrainer, labelled, oracle, tempDir, TRUE_ITEM, verifiedOracles, writeDataset } from './helpers.ts';

function readJsonLines<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

describe('distill cursor', () => {
  it('a second run with no new data trains nothing and says so; new parts (or --force) run again; a failed run is retried', async () => {
    const t = tempDir('distill-cursor-');
    try {
      const dataset = join(t.dir, 'dataset');
      const registryDir = join(t.dir, 'registry');
      const stateDir = join(t.dir, 'state');
      await writeDataset(dataset, Array.from({ length: 40 }, (_, i) => labelled(i)));
      const calls: TrainerRequest[] = [];
      const opts = baseOptions({ stateDir, registryDir, trajectoriesDir: dataset });
      const deps = {
        train: fixtureTrainer(calls),
        loadModel: verifiedOracles(registryDir, () => 'best' as const),
        baseline: () => oracle('baseline-test', 'order'),
      };

      const first = await runDistill(opts, deps);
      assert.equal(first.decision, 'published', first.summary);
      assert.deepEqual(first.data.newParts, ['kept-000001.jsonl', 'kept-000002.jsonl', 'kept-000003.jsonl', 'kept-000004.jsonl']);
      const cursor = await readCursor(stateDir);
      assert.equal(cursor.parts.length, 4);
      assert.equal(cursor.lastRun?.decision, 'published');

      const second = await runDistill(opts, deps);
      assert.equal(second.decision, 'skipped');
      assert.match(second.summary, /no new data since the last run \(last run .*: published\): 4 parts already used/);
      assert.equal(calls.length, 1, 'the trainer did not run');
      assert.deepEqual(await readCursor(stateDir), cursor, 'the cursor did not move');
      assert.equal(readFileSync(join(registryDir, 'CURRENT'), 'utf8').trim(), first.published!.version);

      // New parts: the next run trains on everything before its (later) window and says what was new.
      await writeDataset(dataset, Array.from({ length: 20 }, (_, i) => labelled(40 + i)));
      const third = await runDistill(opts, deps);
      assert.notEqual(third.decision, 'skipped', third.summary);
      assert.deepEqual(third.data.newParts, ['kept-000005.jsonl', 'kept-000006.jsonl']);
      assert.equal(calls.length, 2);
      assert.ok(third.holdout!.cutoffMs > first.holdout!.cutoffMs);

      const forced = await runDistill({ ...opts, force: true }, deps);
      assert.notEqual(forced.decision, 'skipped');
      assert.equal(forced.data.forced, true);
      assert.equal(calls.length, 3);

      // A trainer that crashes: the run throws, its report says failed, and the cursor stays for a retry.
      await writeDataset(dataset, Array.from({ length: 10 }, (_, i) => labelled(60 + i)));
      const before = await readCursor(stateDir);
      await assert.rejects(
        runDistill(opts, { ...deps, train: async () => Promise.reject(new Error('trainer exploded')) }),
        /trainer exploded/,
      );
      const latest = JSON.parse(readFileSync(join(stateDir, 'reports', 'latest.json'), 'utf8')) as { decision: string; reason: string };
      assert.equal(latest.decision, 'failed');
      assert.match(latest.reason, /trainer exploded/);
      assert.deepEqual(await readCursor(stateDir), before);
      const retried = await runDistill(opts, deps);
      assert.notEqual(retried.decision, 'skipped');
      assert.equal(readFileSync(join(stateDir, 'decisions.log'), 'utf8').trim().split('\n').length, 6);
    } finally {
      t.cleanup();
    }
  });
});

describe('distill held-out window', () => {
  /**
   * 40 trajectories a minute apart; every 5th is labelled 10 minutes later (so near the cutoff its label
   * falls inside the window), every 7th (from the 3rd) expired with a 30-minute horizon.
   */
  function records(): LabelledTrajectory[] {
    return Array.from({ length: 40 }, (_, i) => {
      const atMs = T0 + i * 60_000;
      if (i % 7 === 3) return labelled(i, { status: 'expired', horizonMs: 30 * 60_000 });
      if (i % 5 === 0) return labelled(i, { status: 'observed', nextItemId: TRUE_ITEM, observedAtMs: atMs + 10 * 60_000, studentRank: 2 });
      return labelled(i);
    });
  }

  it('never overlaps training: trajectories whose case or label reaches the window stay out', async () => {
    const t = tempDir('distill-split-');
    try {
      const dataset = join(t.dir, 'dataset');
      await writeDataset(dataset, records());
      const paths = { trajectoriesDir: dataset, casesFile: null };
      const state = await scanSources(paths);
      const window = (await chooseWindow(paths, state, 0.25))!;
      assert.equal(window.source, 'trajectories');
      assert.equal(window.poolCases, 40 - 6, 'expired cases are not evaluation cases');
      const input = await writeTrainingInput(paths, state, window, join(t.dir, 'input'));
      const trained = readJsonLines<LabelledTrajectory>(input.trajectoriesFile!);
      assert.equal(trained.length, input.counts.trajectories.trained);
      assert.equal(input.evalCases.length, Math.ceil(34 * 0.25));
      for (const r of trained) {
        assert.ok(r.case.atMs < window.cutoffMs);
        assert.ok(labelKnownBefore(r, window.cutoffMs));
        const labelAt = r.outcome.status === 'observed' ? r.outcome.observedAtMs : r.case.atMs + r.outcome.horizonMs;
        assert.ok(labelAt < window.cutoffMs, `${r.case.caseId} is labelled at or after the cutoff`);
      }
      for (const c of input.evalCases) assert.ok(c.atMs >= window.cutoffMs);
      const trainedIds = new Set(trained.map((r) => r.case.caseId));
      assert.ok(input.evalCases.every((c) => !trainedIds.has(c.id)));
      // Some cases before the cutoff were left out because their label is not known before it.
      const beforeCutoff = records().filter((r) => r.case.atMs < window.cutoffMs).length;
      assert.ok(trained.length < beforeCutoff, `${trained.length} trained of ${beforeCutoff} before the cutoff`);
      assert.equal(trained.length + input.counts.trajectories.heldOut, 40);
    } finally {
      t.cleanup();
    }
  });

  it('with a case file, the window is its latest cases and training gets only what came before', async () => {
    const t = tempDir('distill-split-cases-');
    try {
      const dataset = join(t.dir, 'dataset');
      await writeDataset(dataset, records());
      const casesFile = join(t.dir, 'cases.jsonl');
      const lines = Array.from({ length: 30 }, (_, i) => {
        const c = teacherCase(`c${i}`, T0 + i * 80_000 + 15_000, ['x', TRUE_ITEM, 'y']);
        const scoring = { eventId: c.eventId, atMs: c.atMs, user: c.user, candidates: c.candidates };
        return JSON.stringify({ split: i < 24 ? 'train' : 'test', label: 1, itemId: TRUE_ITEM, case: scoring });
      });
      writeFileSync(casesFile, `${lines.join('\n')}\n`);
      const paths = { trajectoriesDir: dataset, casesFile };
      const state = await scanSources(paths);
      const window = (await chooseWindow(paths, state, 0.2))!;
      assert.equal(window.source, 'cases');
      const input = await writeTrainingInput(paths, state, window, join(t.dir, 'input'));
      const trainedCases = readJsonLines<{ split: string; case: { atMs: number } }>(input.casesFile!);
      assert.equal(input.evalCases.length, 6);
      assert.equal(trainedCases.length, 24);
      assert.ok(trainedCases.every((r) => r.split === 'train' && r.case.atMs < window.cutoffMs));
      assert.ok(input.evalCases.every((c) => c.atMs >= window.cutoffMs && c.id.startsWith('case-c')));
      for (const r of readJsonLines<LabelledTrajectory>(input.trajectoriesFile!)) assert.ok(labelKnownBefore(r, window.cutoffMs));
    } finally {
      t.cleanup();
    }
  });
});
