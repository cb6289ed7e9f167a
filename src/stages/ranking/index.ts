import type { CollaborativeEvidence, ScoringCase } from '../../domain/evidence.ts';
import type { Scorer } from '../../star/port.ts';

/** Ranking: scores every candidate through the `Scorer` port and keeps the top K, best first. */

export interface RankedCandidate {
  readonly evidence: CollaborativeEvidence;
  readonly score: number;
}

export async function rankCase(scorer: Scorer, scoringCase: ScoringCase, topK: number): Promise<RankedCandidate[]> {
  if (scoringCase.candidates.length === 0) return [];
  const [scores] = await scorer.score([scoringCase]);
  return topByScore(scoringCase.candidates, scores!, topK);
}

/** Best first; equal scores keep candidate order, so results are deterministic. */
export function topByScore(
  candidates: readonly CollaborativeEvidence[],
  scores: Float32Array,
  topK: number,
): RankedCandidate[] {
  return candidates
    .map((evidence, i) => ({ evidence, score: scores[i]!, i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, topK)
    .map(({ evidence, score }) => ({ evidence, score }));
}
