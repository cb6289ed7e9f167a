import type { EvidenceFeatures, ScoringCase } from '../domain/evidence.ts';
import { loadCstTemplates } from '../cst/index.ts';
import { createOnlineScorer, type OnlineBlendHooks, type OnlineBlendOptions, type OnlineBlendScorer } from '../star/online/scorer.ts';
import type { Scorer } from '../star/port.ts';
import { loadPromptSpec } from '../star/prompt/spec.ts';
import { loadVerifiedModel } from '../star/registry/registry.ts';

/**
 * The single-signal baselines reported beside every ranker. Each scores the same candidate sets; since the
 * candidates include the top items of each signal, ranking them by one feature equals ranking the whole
 * catalogue by it. A small popularity term breaks ties, as a count-only ranking would otherwise leave them
 * in arbitrary order.
 */
function featureScorer(name: string, score: (f: EvidenceFeatures) => number): Scorer {
  return {
    modelVersion: name,
    readsSentences: false,
    score: async (cases: readonly ScoringCase[]) => cases.map((c) => Float32Array.from(c.candidates, (e) => score(e.features))),
    close: async () => {},
  };
}

const tieBreak = (f: EvidenceFeatures): number => 1e-6 * Math.log1p(f.popularity);

export const popularityScorer = (): Scorer => featureScorer('popularity', (f) => f.popularity);
export const cooccurrenceScorer = (): Scorer => featureScorer('item-cf', (f) => f.cooccurrence + tieBreak(f));
export const embeddingScorer = (): Scorer => featureScorer('embeddings', (f) => f.embeddingScore + tieBreak(f));

/**
 * The online blend (`src/star/online/`), fresh from the baseline's weights: it learns from the harness's own
 * replay (each case joined with the user's next case, as in the stream), so every run starts it anew. Keep the
 * object to read `stats()` after the run (its weights, the guard's window and changes).
 */
export const onlineBlendScorer = (options: Partial<OnlineBlendOptions> = {}, hooks: OnlineBlendHooks = {}): OnlineBlendScorer =>
  createOnlineScorer(options, hooks);

/**
 * A STAR model directory as a scorer, through the serving path (`loadVerifiedModel`: files, prompt and CST
 * template versions, parity against the trainer's scores), so evaluation scores what serving would.
 */
export async function loadStarScorer(dir: string): Promise<Scorer> {
  const { scorer } = await loadVerifiedModel(dir, { spec: loadPromptSpec(), cstTemplateVersion: loadCstTemplates().version, parityTolerance: 1e-3 });
  return scorer;
}
