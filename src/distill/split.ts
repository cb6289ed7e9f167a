import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScoringCase } from '../domain/evidence.ts';
import type { LabelledTrajectory } from '../domain/teacher.ts';
import { FatalError } from '../errors/index.ts';
import { parseScoringCase } from '../star/prompt/case-schema.ts';
import { labelledIssue } from '../teacher/dataset/label.ts';
import { forEachJsonLine, type SourcePaths, type SourceState } from './sources.ts';

/**
 * The time-ordered split of one run: a held-out window of the most recent evaluation cases, which neither the
 * challenger (trained now) nor the champion (trained in an earlier run, on data that ended before this window
 * began at the latest) has seen, and the training input: everything that happened before the window.
 *
 * **How the window is chosen.** The evaluation cases come from the case file when one is configured (the
 * paper's protocol: the true next item among 20 candidates), else from the data set's labelled trajectories
 * (kept and rejected alike, so the teacher's own filter cannot flatter the window) whose observed next item
 * is one of the case's candidates. They are ordered by event time; the latest `holdoutShare` of them (at
 * least one) sets `cutoffMs`, the event time of the earliest of them, and every evaluation case at or after
 * `cutoffMs` is held out (ties included, so the window is a pure time cut).
 *
 * **What training gets.** Case-file records before `cutoffMs` (relabelled `split: "train"`: the trainer takes
 * its validation from their latest 10 %; the export's own train/test split is ignored), and kept trajectories
 * whose case *and label* lie before it: a trajectory is labelled by the user's next interaction, which may
 * fall inside the window (it may even be a held-out case's event), so an observed outcome at or after
 * `cutoffMs`, or an expiry horizon that reaches it, keeps the trajectory out too. Records written twice (the
 * writer delivers at least once) are read once, by `case.caseId`.
 */

export interface EvalCase {
  readonly id: string;
  readonly itemId: string;
  readonly atMs: number;
  readonly case: ScoringCase;
}

export interface HoldoutWindow {
  readonly source: 'cases' | 'trajectories';
  /** Held out: evaluation cases at or after this event time; trained on: what happened before it. */
  readonly cutoffMs: number;
  /** Evaluation cases available in all (the window is the latest share of them). */
  readonly poolCases: number;
}

export interface TrainingInput {
  /** JSON lines of `LabelledTrajectory` for `--trajectories`; null when none qualify. */
  readonly trajectoriesFile: string | null;
  /** JSON lines of case records for `--cases`; null when none qualify. */
  readonly casesFile: string | null;
  readonly counts: {
    readonly trajectories: { readonly kept: number; readonly trained: number; readonly heldOut: number; readonly duplicates: number };
    readonly cases: { readonly read: number; readonly trained: number; readonly heldOut: number };
  };
  /** The held-out window's cases, in time order. */
  readonly evalCases: readonly EvalCase[];
}

/** Picks the window over the evaluation cases; null when there are none. */
export async function chooseWindow(paths: SourcePaths, state: SourceState, holdoutShare: number): Promise<HoldoutWindow | null> {
  const times: number[] = [];
  const source = state.casesFile && state.casesFile.records > 0 ? 'cases' : 'trajectories';
  if (source === 'cases') {
    await forEachJsonLine(state.casesFile!.path, (value, where) => {
      times.push(caseRecord(value, where).atMs);
    });
  } else if (paths.trajectoriesDir) {
    const seen = new Set<string>();
    for (const part of state.parts) {
      await forEachJsonLine(join(paths.trajectoriesDir, part.path), (value, where) => {
        const t = trajectory(value, where);
        if (seen.has(t.case.caseId)) return;
        seen.add(t.case.caseId);
        if (observedCandidate(t) !== null) times.push(t.case.atMs);
      });
    }
  }
  if (times.length === 0) return null;
  times.sort((a, b) => a - b);
  const n = Math.max(1, Math.ceil(times.length * holdoutShare));
  return { source, cutoffMs: times[times.length - n]!, poolCases: times.length };
}

/** Writes the run's training files under `dir` and collects the window's evaluation cases. */
export async function writeTrainingInput(paths: SourcePaths, state: SourceState, window: HoldoutWindow, dir: string): Promise<TrainingInput> {
  await mkdir(dir, { recursive: true });
  const cutoff = window.cutoffMs;
  const evalCases: EvalCase[] = [];
  const t = { kept: 0, trained: 0, heldOut: 0, duplicates: 0 };
  const c = { read: 0, trained: 0, heldOut: 0 };

  let trajectoriesFile: string | null = null;
  if (paths.trajectoriesDir && state.parts.length > 0) {
    const out = new LineWriter(join(dir, 'trajectories.jsonl'));
    const seen = new Set<string>();
    try {
      for (const part of state.parts) {
        await forEachJsonLine(join(paths.trajectoriesDir, part.path), async (value, where) => {
          const record = trajectory(value, where);
          if (seen.has(record.case.caseId)) {
            t.duplicates++;
            return;
          }
          seen.add(record.case.caseId);
          if (window.source === 'trajectories' && record.case.atMs >= cutoff) {
            const itemId = observedCandidate(record);
            if (itemId !== null) evalCases.push(evalCase(record.case.caseId, itemId, record.case, where));
          }
          if (part.split !== 'kept') return;
          t.kept++;
          if (labelKnownBefore(record, cutoff)) {
            t.trained++;
            await out.write(JSON.stringify(record));
          } else {
            t.heldOut++;
          }
        });
      }
    } finally {
      await out.close();
    }
    if (t.trained > 0) trajectoriesFile = out.path;
  }

  let casesFile: string | null = null;
  if (state.casesFile) {
    const out = new LineWriter(join(dir, 'cases.jsonl'));
    try {
      await forEachJsonLine(state.casesFile.path, async (value, where) => {
        const record = caseRecord(value, where);
        c.read++;
        if (record.atMs < cutoff) {
          c.trained++;
          await out.write(JSON.stringify({ ...(value as object), split: 'train' }));
          return;
        }
        c.heldOut++;
        if (window.source === 'cases') evalCases.push(evalCase(record.id, record.itemId, record.case, where));
      });
    } finally {
      await out.close();
    }
    if (c.trained > 0) casesFile = out.path;
  }
  evalCases.sort((a, b) => a.atMs - b.atMs);
  return { trajectoriesFile, casesFile, counts: { trajectories: t, cases: c }, evalCases };
}

/** True when a trajectory's case and its label (outcome or expiry) both lie before `cutoffMs`. */
export function labelKnownBefore(record: LabelledTrajectory, cutoffMs: number): boolean {
  if (record.case.atMs >= cutoffMs) return false;
  const o = record.outcome;
  return o.status === 'observed' ? o.observedAtMs < cutoffMs : record.case.atMs + o.horizonMs < cutoffMs;
}

/** The observed next item when it is one of the case's candidates (an evaluation case), else null. */
function observedCandidate(record: LabelledTrajectory): string | null {
  const o = record.outcome;
  if (o.status !== 'observed') return null;
  return record.case.candidates.some((c) => c.itemId === o.nextItemId) ? o.nextItemId : null;
}

function evalCase(id: string, itemId: string, raw: unknown, where: string): EvalCase {
  let scoring: ScoringCase;
  try {
    const r = raw as Record<string, unknown>;
    scoring = parseScoringCase({ eventId: r.eventId, atMs: r.atMs, user: r.user, candidates: r.candidates });
  } catch (cause) {
    throw new FatalError('DISTILL_INPUT_INVALID', `${where}: not a scoring case: ${(cause as Error).message}`, { cause });
  }
  return { id, itemId, atMs: scoring.atMs, case: scoring };
}

function caseRecord(value: unknown, where: string): { id: string; itemId: string; atMs: number; case: unknown } {
  const r = value as { itemId?: unknown; case?: { eventId?: unknown; atMs?: unknown } } | null;
  if (typeof r?.itemId !== 'string' || typeof r.case?.atMs !== 'number' || typeof r.case.eventId !== 'string') {
    throw new FatalError('DISTILL_INPUT_INVALID', `${where}: not a case record (itemId, case.eventId, case.atMs)`);
  }
  return { id: `case-${r.case.eventId}`, itemId: r.itemId, atMs: r.case.atMs, case: r.case };
}

function trajectory(value: unknown, where: string): LabelledTrajectory {
  // The same check as the writer's: candidates that are not objects used to reach `c.itemId` (a TypeError).
  const issue = labelledIssue(value);
  if (issue) throw new FatalError('DISTILL_INPUT_INVALID', `${where}: not a labelled trajectory: ${issue}`);
  return value as LabelledTrajectory;
}

/** Appends lines to a file, waiting on backpressure; a write error surfaces at the next write or at close. */
class LineWriter {
  private readonly stream: WriteStream;
  private failure: Error | null = null;

  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { encoding: 'utf8' });
    this.stream.on('error', (err) => {
      this.failure ??= err;
    });
  }

  async write(line: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.stream.write(`${line}\n`)) return;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.stream.once('error', onError);
      this.stream.once('drain', () => {
        this.stream.off('error', onError);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.stream.once('error', reject);
      this.stream.end(() => (this.failure ? reject(this.failure) : resolve()));
    });
  }
}
