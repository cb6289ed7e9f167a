/**
 * Builders for side-stream tests: evidence, teacher cases and trajectories with only the fields a test cares
 * about set; everything else is a neutral default.
 */
import type { CollaborativeEvidence, EvidenceFeatures, UserContext } from '../../src/domain/evidence.ts';
import type { SamplingReason, TeacherCase, Trajectory } from '../../src/domain/teacher.ts';

export const T0 = Date.UTC(2025, 0, 1);

export function features(extra: Partial<EvidenceFeatures> = {}): EvidenceFeatures {
  return {
    cooccurrence: 0,
    cooccurrenceRecent: 0,
    cooccurringRecentItems: 0,
    neighbourEngagement: 0,
    embeddingScore: 0,
    popularity: 10,
    recentPopularity: 1,
    trend: 1,
    categoryFit: 0,
    ...extra,
  };
}

export function evidence(itemId: string, extra: Partial<EvidenceFeatures> = {}): CollaborativeEvidence {
  return { itemId, title: `Title ${itemId}`, categories: ['Drama'], sources: ['popular'], features: features(extra), sentences: [`${itemId} is popular.`] };
}

export function userContext(userId: string, interactionCount = 20): UserContext {
  return {
    userId,
    interactionCount,
    recentItems: [{ itemId: 'h1', title: 'History one', atMs: T0 - 1_000 }],
    categoryMix: [{ category: 'Drama', share: 1 }],
  };
}

export function teacherCase(
  userId: string,
  atMs: number,
  items: readonly string[] = ['a', 'b', 'c', 'd'],
  extra: { eventId?: string; reason?: SamplingReason } = {},
): TeacherCase {
  const eventId = extra.eventId ?? `${userId}@${atMs}`;
  return {
    caseId: `case-${eventId}`,
    eventId,
    atMs,
    reason: extra.reason ?? 'uniform',
    margin: null,
    user: userContext(userId),
    candidates: items.map((i) => evidence(i)),
    studentScores: items.map((_, k) => items.length - k),
    studentModel: 'baseline-2',
    templateVersion: 'cst-1',
  };
}

export function trajectory(caseId: string, ranking: readonly string[], status: 'completed' | 'failed' = 'completed'): Trajectory {
  return {
    caseId,
    backend: 'scripted',
    model: 'stand-in',
    startedAtMs: T0,
    ms: 12,
    steps: status === 'completed' ? [{ kind: 'recommend', agent: 'ranker', ranking, justification: 'scripted' }] : [],
    turns: [{ agent: 'ranker', attempt: 1, promptTokens: 10, completionTokens: 5, ms: 12, error: null }],
    ranking: status === 'completed' ? ranking : [],
    status,
    failure: status === 'failed' ? 'limit: turns' : null,
    serialized: status === 'completed' ? `<recommend>${ranking.join(', ')}</recommend>` : '',
  };
}
