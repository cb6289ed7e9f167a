import type { ScoringCase } from '../domain/evidence.ts';
import type { Scorer } from '../star/port.ts';
import { MetricMeans, hitAt, ndcgAt } from './metrics.ts';
import { rankOf } from './streaming.ts';

/**
 * Scoring a fixed set of cases (candidate lists with the true next item in them) with one system, and the
 * metrics of both protocols from the ranks. One implementation for `starstream eval`, `bench/star-quality.ts`
 * and anything else that scores frozen cases: a rank is the 0-based position of the true item in the
 * system's order (equal scores keep the case's order), -1 when it is not within the depth asked for.
 */

/** A frozen case and the item the user actually took next. */
export interface LabelledCase {
  readonly itemId: string;
  readonly case: ScoringCase;
}

/** Ranks of the true item, one per case, in `cases` order; `depth` caps how far down a rank is read. */
export async function rankCases(scorer: Scorer, cases: readonly LabelledCase[], depth: number, batchLists = 64): Promise<number[]> {
  const ranks: number[] = [];
  for (let at = 0; at < cases.length; at += batchLists) {
    const chunk = cases.slice(at, at + batchLists);
    const scores = await scorer.score(chunk.map((c) => c.case));
    chunk.forEach((c, i) => ranks.push(rankOf(c.case, scores[i]!, c.itemId, depth)));
  }
  return ranks;
}

/** The deepest hit rate the paper's protocol reports (HR@1/3/5). */
export const PAPER_DEEPEST_HR = 5;

/** The paper's protocol over ranks within short lists. */
export interface PaperMetrics {
  readonly cases: number;
  readonly hr1: number;
  readonly hr3: number;
  readonly hr5: number;
  /** (HR@1 + HR@3 + HR@5) / 3 × 100, as the paper and REFERENCE.md print it. */
  readonly avg: number;
  readonly ndcg10: number;
}

export function paperMetrics(ranks: Iterable<number>): PaperMetrics {
  const means = new MetricMeans();
  for (const rank of ranks) means.add({ hr1: hitAt(rank, 1), hr3: hitAt(rank, 3), hr5: hitAt(rank, 5), ndcg10: ndcgAt(rank, 10) });
  const hr1 = means.mean('hr1');
  const hr3 = means.mean('hr3');
  const hr5 = means.mean('hr5');
  return { cases: means.count, hr1, hr3, hr5, avg: ((hr1 + hr3 + hr5) / 3) * 100, ndcg10: means.mean('ndcg10') };
}

/** The streaming protocol over ranks within the full candidate set: hit rate and NDCG at `k`. */
export interface StreamingMetrics {
  readonly cases: number;
  readonly hitRate: number;
  readonly ndcg: number;
}

export function streamingMetrics(ranks: Iterable<number>, k: number): StreamingMetrics {
  const means = new MetricMeans();
  for (const rank of ranks) means.add({ hit: hitAt(rank, k), ndcg: ndcgAt(rank, k) });
  return { cases: means.count, hitRate: means.mean('hit'), ndcg: means.mean('ndcg') };
}
