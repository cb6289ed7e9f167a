import type { EvidenceFeatures, ScoringCase } from '../../domain/evidence.ts';
import type { Scorer } from '../port.ts';

/**
 * The collaborative baseline ranker: a fixed linear blend of the CST features, serving until a STAR model is
 * configured and as the bar STAR has to clear. Counts enter as log1p so that one heavy signal cannot drown
 * the others; weights were chosen on the streaming protocol over ml-100k (see README, "Quality").
 */

export interface BaselineWeights {
  readonly cooccurrence: number;
  readonly cooccurringRecentItems: number;
  readonly neighbourEngagement: number;
  readonly embeddingScore: number;
  readonly popularity: number;
  readonly trend: number;
  readonly categoryFit: number;
}

export const DEFAULT_BASELINE_WEIGHTS: BaselineWeights = {
  cooccurrence: 1.0,
  cooccurringRecentItems: 0.3,
  neighbourEngagement: 0.5,
  embeddingScore: 0.5,
  popularity: 0.3,
  trend: 0.1,
  categoryFit: 0.2,
};

export const BASELINE_VERSION = 'baseline-1';

export function baselineScore(f: EvidenceFeatures, w: BaselineWeights): number {
  return (
    w.cooccurrence * Math.log1p(f.cooccurrence) +
    w.cooccurringRecentItems * f.cooccurringRecentItems +
    w.neighbourEngagement * Math.log1p(f.neighbourEngagement) +
    w.embeddingScore * f.embeddingScore +
    w.popularity * Math.log1p(f.popularity) +
    w.trend * Math.log(Math.max(1e-3, f.trend)) +
    w.categoryFit * f.categoryFit
  );
}

export function createBaselineScorer(weights: BaselineWeights = DEFAULT_BASELINE_WEIGHTS): Scorer {
  return {
    modelVersion: BASELINE_VERSION,
    readsSentences: false,
    score: async (cases: readonly ScoringCase[]) =>
      cases.map((c) => Float32Array.from(c.candidates, (e) => baselineScore(e.features, weights))),
    close: async () => {},
  };
}
