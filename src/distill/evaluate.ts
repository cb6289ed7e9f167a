import { hitAt, MetricMeans, ndcgAt } from '../eval/metrics.ts';
import { topByScore } from '../stages/ranking/index.ts';
import type { Scorer } from '../star/port.ts';
import type { EvalCase } from './split.ts';

/**
 * Scores the held-out window with one system, the paper's way (`bench/star-quality.ts`): each case is a list
 * with the observed next item in it; the scorer ranks the list (equal scores keep the case's order) and we
 * count HR@1, HR@3, HR@5, their average (the gate's number) and NDCG@10. Values are shares, 0..1.
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

export async function evaluateScorer(scorer: Scorer, cases: readonly EvalCase[], batchLists = 64): Promise<HoldoutMetrics> {
  const means = new MetricMeans();
  for (let at = 0; at < cases.length; at += batchLists) {
    const chunk = cases.slice(at, at + batchLists);
    const scores = await scorer.score(chunk.map((c) => c.case));
    chunk.forEach((c, i) => {
      const ranked = topByScore(c.case.candidates, scores[i]!, c.case.candidates.length);
      const rank = ranked.findIndex((x) => x.evidence.itemId === c.itemId);
      means.add({ hr1: hitAt(rank, 1), hr3: hitAt(rank, 3), hr5: hitAt(rank, 5), ndcg10: ndcgAt(rank, 10) });
    });
  }
  const hr1 = means.mean('hr1');
  const hr3 = means.mean('hr3');
  const hr5 = means.mean('hr5');
  return { cases: means.count, hr1, hr3, hr5, avgHr: (hr1 + hr3 + hr5) / 3, ndcg10: means.mean('ndcg10') };
}
