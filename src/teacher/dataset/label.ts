import type { LabelledTrajectory, Trajectory } from '../../domain/teacher.ts';
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
