import type { EvidenceFeatures, ScoringCase } from '../../domain/evidence.ts';
import type { Scorer } from '../port.ts';

/**
 * The collaborative baseline ranker: a fixed linear blend of the CST features, serving until a STAR model is
 * configured and as the bar STAR has to clear. Counts enter as log1p so that one heavy signal cannot drown
 * the others.
 *
 * How the weights were chosen: features of every candidate list of the streaming protocol on ml-100k were
 * dumped; a linear model was fitted with a listwise softmax loss on the first half of the scored events and
 * refined by coordinate search for hit@10 on that half; the second half (held out) scored within 0.002 of
 * the first. Features whose fitted weight was near zero were dropped (neighbour engagement, trend, the count
 * of co-occurring recent items). The recency-weighted co-occurrence carries most of the signal; category fit
 * and the short-window popularity add what co-occurrence misses for items new to the user's neighbourhood.
 */

export interface BaselineWeights {
  readonly cooccurrence: number;
  readonly cooccurrenceRecent: number;
  readonly embeddingScore: number;
  readonly popularity: number;
  readonly recentPopularity: number;
  readonly categoryFit: number;
}

export const DEFAULT_BASELINE_WEIGHTS: BaselineWeights = {
  cooccurrence: 0.2,
  cooccurrenceRecent: 0.9,
  embeddingScore: 0.37,
  popularity: 0.02,
  recentPopularity: 0.21,
  categoryFit: 0.86,
};

export const BASELINE_VERSION = 'baseline-2';

/**
 * The feature transform of the blend, one function per weight: counts as log1p, scores as they are. Exported
 * for rankers that learn over the same terms (`src/star/online/`); `baselineScore` spells the same sum out.
 */
export const BASELINE_TERMS: { readonly [K in keyof BaselineWeights]: (f: EvidenceFeatures) => number } = {
  cooccurrence: (f) => Math.log1p(f.cooccurrence),
  cooccurrenceRecent: (f) => Math.log1p(f.cooccurrenceRecent),
  embeddingScore: (f) => f.embeddingScore,
  popularity: (f) => Math.log1p(f.popularity),
  recentPopularity: (f) => Math.log1p(f.recentPopularity),
  categoryFit: (f) => f.categoryFit,
};

export function baselineScore(f: EvidenceFeatures, w: BaselineWeights): number {
  return (
    w.cooccurrence * Math.log1p(f.cooccurrence) +
    w.cooccurrenceRecent * Math.log1p(f.cooccurrenceRecent) +
    w.embeddingScore * f.embeddingScore +
    w.popularity * Math.log1p(f.popularity) +
    w.recentPopularity * Math.log1p(f.recentPopularity) +
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
