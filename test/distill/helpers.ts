import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScoringCase } from '../../src/domain/evidence.ts';
import type { CaseOutcome, LabelledTrajectory } from '../../src/domain/teacher.ts';
import type { DistillDeps, DistillOptions } from '../../src/distill/run.ts';
import type { TrainerFn, TrainerRequest } from '../../src/distill/trainer.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import type { Scorer } from '../../src/star/port.ts';
import { loadVerifiedModel } from '../../src/star/registry/registry.ts';
import { labelTrajectory } from '../../src/teacher/dataset/label.ts';
import { DatasetWriter } from '../../src/teacher/dataset/writer.ts';
import { T0, teacherCase, trajectory } from '../teacher/case-fixtures.ts';
import { editManifest, FIXTURE_MODEL, registryOptions } from '../star/helpers.ts';

/** Eight candidates; the observed item is always `b`, the second in the case's order. */
export const ITEMS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
export const TRUE_ITEM = 'b';

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Labelled trajectory `i`: its case at T0 + i minutes, the outcome `b` 30 s later (or as given). */
export function labelled(i: number, outcome?: CaseOutcome): LabelledTrajectory {
  const c = teacherCase(`u${i}`, T0 + i * 60_000, ITEMS);
  const o: CaseOutcome = outcome ?? { status: 'observed', nextItemId: TRUE_ITEM, observedAtMs: c.atMs + 30_000, studentRank: 2 };
  return labelTrajectory(trajectory(c.caseId, [TRUE_ITEM, ...ITEMS.filter((x) => x !== TRUE_ITEM)]), { case: c, outcome: o });
}

/** Appends records to a data set with the real writer (keep: all), closing its parts. */
export async function writeDataset(dir: string, records: readonly LabelledTrajectory[], maxRecordsPerFile = 10): Promise<void> {
  const writer = await DatasetWriter.open({ dir, maxRecordsPerFile, filter: { keep: 'all', k: 3 } });
  await writer.write(records);
  await writer.close();
}

export function baseOptions(paths: { stateDir: string; registryDir: string; trajectoriesDir?: string | null; casesFile?: string | null }): DistillOptions {
  const r = registryOptions(paths.registryDir);
  return {
    stateDir: paths.stateDir,
    trajectoriesDir: paths.trajectoriesDir ?? null,
    casesFile: paths.casesFile ?? null,
    registryDir: paths.registryDir,
    margin: 0.01,
    holdoutShare: 0.25,
    minHoldoutCases: 3,
    preset: 'tiny',
    trainerSettings: {},
    keepRuns: 2,
    spec: r.spec,
    cstTemplateVersion: r.cstTemplateVersion,
    parityTolerance: r.parityTolerance,
    logger: silentLogger(),
    progress: () => undefined,
  };
}

/** A stand-in trainer: "trains" by copying the committed tiny model; `tamper` may break the copy. */
export function fixtureTrainer(calls: TrainerRequest[], tamper?: (modelDir: string) => void): TrainerFn {
  return async (req, onLine) => {
    calls.push(req);
    onLine('stand-in trainer: copying the fixture model');
    cpSync(FIXTURE_MODEL, req.out, { recursive: true });
    editManifest(req.out, (m) => ({ ...m, version: req.version }));
    tamper?.(req.out);
  };
}

/** Shifts every parity score of a model directory, so its parity check fails. */
export function breakParity(modelDir: string): void {
  const path = join(modelDir, 'parity.jsonl');
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const shifted = lines.map((l) => {
    const p = JSON.parse(l) as { scores: number[] };
    return JSON.stringify({ ...p, scores: p.scores.map((s) => s + 1) });
  });
  writeFileSync(path, `${shifted.join('\n')}\n`);
}

export type Quality = 'best' | 'worst' | 'order';

/**
 * A scorer that knows the answer: `best` puts `TRUE_ITEM` first, `worst` last, `order` keeps the case's
 * order (so `b` is second: HR@1 0, HR@3 and HR@5 1).
 */
export function oracle(modelVersion: string, quality: Quality): Scorer {
  return {
    modelVersion,
    readsSentences: false,
    score: async (cases: readonly ScoringCase[]) =>
      cases.map((c) =>
        Float32Array.from(c.candidates, (x, j) =>
          quality === 'order' ? -j : x.itemId === TRUE_ITEM ? (quality === 'best' ? 1 : -1) : 0,
        ),
      ),
    close: async () => undefined,
  };
}

/**
 * Model loading as the loop does it (the real `loadVerifiedModel`: files, templates, parity), but scoring
 * with an oracle of the quality `qualityOf` gives the model's version, so a test decides who wins.
 */
export function verifiedOracles(registryDir: string, qualityOf: (modelVersion: string) => Quality): NonNullable<DistillDeps['loadModel']> {
  return async (dir) => {
    const { scorer, parity } = await loadVerifiedModel(dir, registryOptions(registryDir));
    const version = scorer.modelVersion;
    await scorer.close();
    return { scorer: oracle(version, qualityOf(version)), parity };
  };
}
