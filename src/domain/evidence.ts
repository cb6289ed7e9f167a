/**
 * Collaborative Signal Translation output: what the collaborative signals say about one candidate, as numbers
 * (for scorers that read features) and as the sentences rendered from them (for STAR and the teacher).
 */

/** Why an item is a candidate at all. */
export const CANDIDATE_SOURCES = ['embedding', 'cooccurrence', 'popular'] as const;
export type CandidateSource = (typeof CANDIDATE_SOURCES)[number];

export interface EvidenceFeatures {
  /** Sum of co-occurrence counts between the candidate and the user's recent items. */
  readonly cooccurrence: number;
  /** Co-occurrence with the most recent items weighted more (see `RECENCY_DECAY` in the candidates stage). */
  readonly cooccurrenceRecent: number;
  /** Number of the user's recent items that co-occur with the candidate at all. */
  readonly cooccurringRecentItems: number;
  /** How many of the user's nearest neighbours (by embedding) have it in their recent history. */
  readonly neighbourEngagement: number;
  /** Inner product of user and item embeddings. */
  readonly embeddingScore: number;
  /** Long-window decayed interaction count. */
  readonly popularity: number;
  /** Short-window decayed interaction count: what is being consumed now. */
  readonly recentPopularity: number;
  /** Short-window over long-window rate, 1 means steady; above 1 rising. */
  readonly trend: number;
  /** Share of the user's recent items that share a category with the candidate, 0..1. */
  readonly categoryFit: number;
}

export interface CollaborativeEvidence {
  readonly itemId: string;
  readonly title: string | null;
  readonly categories: readonly string[];
  readonly sources: readonly CandidateSource[];
  readonly features: EvidenceFeatures;
  /** Deterministic sentences, strongest signal first. */
  readonly sentences: readonly string[];
}

/** The user side of a case: what the stream knows about the user at the moment of the event. */
export interface UserContext {
  readonly userId: string;
  readonly interactionCount: number;
  /** Most recent first. */
  readonly recentItems: readonly { readonly itemId: string; readonly title: string | null; readonly atMs: number }[];
  /** Category shares over the recent items, largest first. */
  readonly categoryMix: readonly { readonly category: string; readonly share: number }[];
}

/** One candidate list to score: the input of every `Scorer`. */
export interface ScoringCase {
  readonly eventId: string;
  readonly atMs: number;
  readonly user: UserContext;
  readonly candidates: readonly CollaborativeEvidence[];
}
