import { SAMPLING_REASONS, type LabelledTrajectory, type Trajectory } from '../../domain/teacher.ts';
import type { LabelledCase } from '../outcomes/join.ts';

/**
 * A trajectory meets its case's outcome: the labelled record the data set holds, and the export filter.
 */

/** Joins a teacher run with its case and outcome; `teacherRank` is the observed item's 1-based rank in the
 * teacher's final ranking (null when the case expired, the run failed, or the teacher left the item out). */
export function labelTrajectory(trajectory: Trajectory, labelled: LabelledCase): LabelledTrajectory {
  if (trajectory.caseId !== labelled.case.caseId) {
    throw new Error(`trajectory ${trajectory.caseId} joined to case ${labelled.case.caseId}`);
  }
  const outcome = labelled.outcome;
  let teacherRank: number | null = null;
  if (outcome.status === 'observed') {
    const index = trajectory.ranking.indexOf(outcome.nextItemId);
    teacherRank = index < 0 ? null : index + 1;
  }
  return { case: labelled.case, trajectory, outcome, teacherRank };
}

/** Which labelled trajectories the export keeps for distillation; the rest go to the rejected files. */
export interface KeepFilter {
  /**
   * `top1`: the teacher ranked the observed item first; `topk`: within `k`; `all`: every completed run,
   * whatever its outcome (failed runs are never kept: they have no ranking to learn from).
   */
  readonly keep: 'top1' | 'topk' | 'all';
  readonly k: number;
}

export type Verdict = { readonly kept: true } | { readonly kept: false; readonly why: RejectReason };
export const REJECT_REASONS = ['failed', 'expired', 'missed'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export function judge(record: LabelledTrajectory, filter: KeepFilter): Verdict {
  if (record.trajectory.status !== 'completed') return { kept: false, why: 'failed' };
  if (filter.keep === 'all') return { kept: true };
  if (record.outcome.status !== 'observed') return { kept: false, why: 'expired' };
  const limit = filter.keep === 'top1' ? 1 : filter.k;
  if (record.teacherRank !== null && record.teacherRank <= limit) return { kept: true };
  return { kept: false, why: 'missed' };
}

/**
 * Why a value read back from a data set file (a JSON line) is not a `LabelledTrajectory` the readers can use,
 * or null when it is one. Checks what the readers rely on (the writer's accounting, the distillation split,
 * the Python reader): the case's id, time, sampling reason and candidate ids; the trajectory's status, ranking
 * and teacher; the outcome; the teacher rank. A file can be damaged or written by something else: readers
 * refuse such a line with its place instead of failing on it later with a TypeError.
 */
export function labelledIssue(value: unknown): string | null {
  if (!isObject(value)) return 'not an object';
  const { case: c, trajectory: t, outcome: o, teacherRank } = value;
  if (!isObject(c)) return 'case is not an object';
  if (typeof c.caseId !== 'string' || c.caseId === '') return 'case.caseId is not a non-empty string';
  if (typeof c.eventId !== 'string') return 'case.eventId is not a string';
  if (!Number.isFinite(c.atMs)) return 'case.atMs is not a finite number';
  if (!(SAMPLING_REASONS as readonly unknown[]).includes(c.reason)) return 'case.reason is not a sampling reason';
  if (!isObject(c.user)) return 'case.user is not an object';
  if (!Array.isArray(c.candidates) || !c.candidates.every((x) => isObject(x) && typeof x.itemId === 'string')) return 'case.candidates is not a list of candidates with an itemId';
  if (!isObject(t)) return 'trajectory is not an object';
  if (t.status !== 'completed' && t.status !== 'failed') return 'trajectory.status is not completed or failed';
  if (!Array.isArray(t.ranking) || !t.ranking.every((id) => typeof id === 'string')) return 'trajectory.ranking is not a list of ids';
  if (typeof t.backend !== 'string' || typeof t.model !== 'string') return 'trajectory.backend or model is not a string';
  if (!isObject(o)) return 'outcome is not an object';
  if (o.status === 'observed') {
    if (typeof o.nextItemId !== 'string' || !Number.isFinite(o.observedAtMs)) return 'observed outcome lacks nextItemId or observedAtMs';
    if (o.studentRank !== null && !isRank(o.studentRank)) return 'outcome.studentRank is not a rank or null';
  } else if (o.status === 'expired') {
    if (!Number.isFinite(o.horizonMs)) return 'expired outcome lacks horizonMs';
  } else {
    return 'outcome.status is not observed or expired';
  }
  if (teacherRank !== null && !isRank(teacherRank)) return 'teacherRank is not a rank or null';
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isRank(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 1;
}
