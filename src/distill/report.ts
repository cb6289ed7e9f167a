import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomically } from '../util/files.ts';
import type { HoldoutMetrics } from './evaluate.ts';
import type { GateDecision } from './gate.ts';

/**
 * What one `starstream distill` run decided, with its numbers. Kept as `<stateDir>/reports/<runId>.json` (and
 * `latest.json`), and as one line appended to `<stateDir>/decisions.log`.
 *
 * | decision | when | cursor |
 * |---|---|---|
 * | `published` | the challenger won by more than the margin; `CURRENT` names it | moves |
 * | `rejected` | the challenger lost, tied, or won by too little; the champion stays | moves |
 * | `refused` | the challenger failed the registry's checks (files, templates, parity) | moves |
 * | `skipped` | no new data, too few held-out cases, or nothing before the window to train on | stays |
 * | `failed` | an error (the trainer crashed, a file is invalid); the run also throws | stays |
 */

export const REPORT_VERSION = 'distill-report-1';
export const DECISIONS = ['published', 'rejected', 'refused', 'skipped', 'failed'] as const;
export type Decision = (typeof DECISIONS)[number];

/** Where a challenger that passes the gate goes (`distill.publishTo`). */
export type PublishTo = 'champion' | 'experiment';

export interface SystemResult {
  /** `modelVersion` of the scorer (`star-…` or `baseline-…`). */
  readonly version: string;
  readonly kind: 'star' | 'baseline';
  readonly metrics: HoldoutMetrics | null;
}

export interface DistillReport {
  readonly reportVersion: string;
  readonly runId: string;
  readonly startedAt: string;
  readonly seconds: number;
  readonly decision: Decision;
  /** Why, in words. */
  readonly reason: string;
  /** Error code for `refused` and `failed`. */
  readonly code: string | null;
  readonly data: {
    readonly trajectoriesDir: string | null;
    readonly casesFile: string | null;
    readonly parts: number;
    readonly newParts: readonly string[];
    readonly casesChanged: boolean;
    readonly forced: boolean;
    readonly training: {
      readonly trajectories: { readonly kept: number; readonly trained: number; readonly heldOut: number; readonly duplicates: number };
      readonly cases: { readonly read: number; readonly trained: number; readonly heldOut: number };
    } | null;
  };
  readonly holdout: {
    readonly source: 'cases' | 'trajectories';
    readonly share: number;
    readonly poolCases: number;
    readonly cases: number;
    readonly cutoffMs: number;
    readonly fromMs: number | null;
    readonly toMs: number | null;
  } | null;
  readonly champion: SystemResult | null;
  readonly challenger: (SystemResult & {
    readonly modelDir: string;
    readonly parity: { readonly cases: number; readonly candidates: number; readonly maxAbsDiff: number } | null;
    readonly trainerMetrics: Readonly<Record<string, number>> | null;
    readonly trainSeconds: number;
  }) | null;
  readonly gate: GateDecision | null;
  readonly published: {
    readonly version: string;
    readonly dir: string;
    /** `champion`: `CURRENT` names it; `experiment`: a challenger, run by the `experiment` section at `experiment`. */
    readonly into?: PublishTo;
    readonly experiment?: string | null;
  } | null;
  readonly summary: string;
}

export function summaryLine(r: Omit<DistillReport, 'summary'>): string {
  const head = `distill ${r.runId}: ${r.decision}`;
  const ch = r.champion?.metrics;
  const cl = r.challenger?.metrics;
  if (ch && cl && r.gate && r.challenger && r.champion) {
    const sign = r.gate.gain >= 0 ? '+' : '';
    const vs = `challenger ${r.challenger.version} avg HR ${cl.avgHr.toFixed(4)} vs champion ${r.champion.version} ${ch.avgHr.toFixed(4)}`;
    const gain = `gain ${sign}${r.gate.gain.toFixed(4)} ${r.gate.publish ? '>' : '≤'} margin ${r.gate.margin.toFixed(4)}`;
    return `${head} (${vs}, ${gain}, ${ch.cases} held-out cases from ${r.holdout?.source ?? '?'})`;
  }
  return `${head} (${r.code ? `${r.code}: ` : ''}${r.reason.split('\n')[0]})`;
}

export async function saveReport(stateDir: string, report: DistillReport): Promise<string> {
  const dir = join(stateDir, 'reports');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${report.runId}.json`);
  const text = `${JSON.stringify(report, null, 2)}\n`;
  await writeAtomically(path, text);
  await writeAtomically(join(dir, 'latest.json'), text);
  await appendFile(join(stateDir, 'decisions.log'), `${new Date().toISOString()} ${report.summary}\n`);
  return path;
}

/** Removes all but the newest `keep` run folders (their names sort by time). */
export async function pruneRuns(stateDir: string, keep: number): Promise<void> {
  const dir = join(stateDir, 'runs');
  if (!existsSync(dir)) return;
  const runs = (await readdir(dir)).sort();
  for (const name of runs.slice(0, Math.max(0, runs.length - keep))) await rm(join(dir, name), { recursive: true, force: true });
}
