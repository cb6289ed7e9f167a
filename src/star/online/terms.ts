import type { EvidenceFeatures } from '../../domain/evidence.ts';
import { BASELINE_TERMS, DEFAULT_BASELINE_WEIGHTS, type BaselineWeights } from '../baseline/scorer.ts';

/**
 * The terms the online blend learns over: the baseline's six (the same transform, `BASELINE_TERMS`) and the
 * three the baseline dropped on ml-100k (they start at weight 0, so the blend starts as the baseline, and may
 * earn a weight on a domain where they carry signal). Counts enter as log1p, as in the baseline.
 */
export const ONLINE_TERMS = [
  'cooccurrence',
  'cooccurrenceRecent',
  'embeddingScore',
  'popularity',
  'recentPopularity',
  'categoryFit',
  'cooccurringRecentItems',
  'neighbourEngagement',
  'trend',
] as const;
export type OnlineTerm = (typeof ONLINE_TERMS)[number];
export const TERM_COUNT = ONLINE_TERMS.length;

/** Index of the popularity term: the tie-break of the single-signal rankings. */
export const POPULARITY_TERM = ONLINE_TERMS.indexOf('popularity');

const finite = (x: number): number => (Number.isFinite(x) ? x : 0);

const EXTRA_TERMS: { readonly [K in Exclude<OnlineTerm, keyof BaselineWeights>]: (f: EvidenceFeatures) => number } = {
  cooccurringRecentItems: (f) => Math.log1p(f.cooccurringRecentItems),
  neighbourEngagement: (f) => Math.log1p(f.neighbourEngagement),
  // A rate ratio, 1 = steady; log1p keeps a spike from dominating.
  trend: (f) => Math.log1p(Math.max(0, f.trend)),
};

const TRANSFORMS: readonly ((f: EvidenceFeatures) => number)[] = ONLINE_TERMS.map((t) =>
  t in BASELINE_TERMS ? BASELINE_TERMS[t as keyof BaselineWeights] : EXTRA_TERMS[t as keyof typeof EXTRA_TERMS],
);

/** Writes the candidate's terms into `out` from `offset` (`TERM_COUNT` values). */
export function termsInto(f: EvidenceFeatures, out: Float32Array | Float64Array, offset: number): void {
  for (let j = 0; j < TERM_COUNT; j++) out[offset + j] = finite(TRANSFORMS[j]!(f));
}

/** The baseline's weights as a term vector (the dropped terms at 0): where the online blend starts. */
export function startWeights(weights: BaselineWeights = DEFAULT_BASELINE_WEIGHTS): Float64Array {
  return Float64Array.from(ONLINE_TERMS, (t) => (t in weights ? weights[t as keyof BaselineWeights] : 0));
}

/** Weights as a readable record (logs, stats). */
export function namedWeights(w: ArrayLike<number>): Record<OnlineTerm, number> {
  return Object.fromEntries(ONLINE_TERMS.map((t, j) => [t, w[j]!])) as Record<OnlineTerm, number>;
}
