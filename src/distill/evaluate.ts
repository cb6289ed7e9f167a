import { paperMetrics, rankCases } from '../eval/lists.ts';
import type { Scorer } from '../star/port.ts';
import type { EvalCase } from './split.ts';

/**
 * Scores the held-out window with one system, the paper's way, through the eval harness's own scoring
 * (`src/eval/lists.ts`): HR@1, HR@3, HR@5, their average (the gate's number) and NDCG@10. Values are shares,
 * 0..1.
 */

export interface HoldoutMetrics {
  readonly cases: number;
  readonly hr1: number;
  readonly hr3: number;
  readonly hr5: number;
  /** (HR@1 + HR@3 + HR@5) / 3. */
  readonly avgHr: number;
  readonly ndcg10: number;
}

/** Lists are short (the paper's 20 candidates), so the whole list is ranked: every rank is exact. */
const WHOLE_LIST = Number.MAX_SAFE_INTEGER;

export async function evaluateScorer(scorer: Scorer, cases: readonly EvalCase[], batchLists = 64): Promise<HoldoutMetrics> {
  const m = paperMetrics(await rankCases(scorer, cases, WHOLE_LIST, batchLists));
  return { cases: m.cases, hr1: m.hr1, hr3: m.hr3, hr5: m.hr5, avgHr: (m.hr1 + m.hr3 + m.hr5) / 3, ndcg10: m.ndcg10 };
}
