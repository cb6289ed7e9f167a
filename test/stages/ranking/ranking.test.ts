import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { CollaborativeEvidence, ScoringCase } from '../../../src/domain/evidence.ts';
import { rankCase, topByScore } from '../../../src/stages/ranking/index.ts';
import type { Scorer } from '../../../src/star/port.ts';

function candidate(itemId: string): CollaborativeEvidence {
  return {
    itemId,
    title: null,
    categories: [],
    sources: ['popular'],
    features: { cooccurrence: 0, cooccurrenceRecent: 0, cooccurringRecentItems: 0, neighbourEngagement: 0, embeddingScore: 0, popularity: 0, recentPopularity: 0, trend: 1, categoryFit: 0 },
    sentences: [],
  };
}

const ids = (ranked: { evidence: CollaborativeEvidence }[]): string[] => ranked.map((r) => r.evidence.itemId);

describe('topByScore', () => {
  it('orders best first and keeps the top K', () => {
    const cs = ['a', 'b', 'c', 'd'].map(candidate);
    const ranked = topByScore(cs, Float32Array.of(0.1, 0.9, -2, 0.5), 3);
    assert.deepEqual(ids(ranked), ['b', 'd', 'a']);
    assert.deepEqual(ranked.map((r) => r.score), [Math.fround(0.9), 0.5, Math.fround(0.1)]);
    assert.equal(ranked[0]!.evidence, cs[1], 'the evidence object is passed through');
  });

  it('keeps candidate order among equal scores', () => {
    const cs = ['a', 'b', 'c', 'd', 'e'].map(candidate);
    assert.deepEqual(ids(topByScore(cs, Float32Array.of(1, 2, 1, 2, 1), 5)), ['b', 'd', 'a', 'c', 'e']);
  });

  it('returns everything when K exceeds the candidates, nothing for none', () => {
    assert.equal(topByScore(['a', 'b'].map(candidate), Float32Array.of(1, 2), 10).length, 2);
    assert.deepEqual(topByScore([], new Float32Array(0), 10), []);
  });

  it('is a stable sort by descending score (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 40 }), fc.integer({ min: 1, max: 50 }), (scores, k) => {
        const cs = scores.map((_, i) => candidate(`i${i}`));
        const ranked = topByScore(cs, Float32Array.from(scores), k);
        const expected = scores
          .map((s, i) => ({ s, i }))
          .sort((a, b) => b.s - a.s || a.i - b.i)
          .slice(0, k)
          .map(({ i }) => `i${i}`);
        assert.deepEqual(ids(ranked), expected);
      }),
    );
  });
});

describe('rankCase', () => {
  const scoringCase = (n: number): ScoringCase => ({
    eventId: 'e1',
    atMs: 1,
    user: { userId: 'u', interactionCount: 1, recentItems: [], categoryMix: [] },
    candidates: Array.from({ length: n }, (_, i) => candidate(`i${i}`)),
  });

  it('scores the case in one call and keeps the top K', async () => {
    const seen: ScoringCase[][] = [];
    const scorer: Scorer = {
      modelVersion: 'test',
      readsSentences: false,
      score: async (cases) => {
        seen.push([...cases]);
        return cases.map((c) => Float32Array.from(c.candidates, (_, i) => i));
      },
      close: async () => {},
    };
    const ranked = await rankCase(scorer, scoringCase(5), 2);
    assert.deepEqual(ids(ranked), ['i4', 'i3']);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.length, 1);
  });

  it('does not call the scorer for an empty candidate list', async () => {
    const scorer: Scorer = {
      modelVersion: 'test',
      readsSentences: false,
      score: async () => assert.fail('no call for no candidates'),
      close: async () => {},
    };
    assert.deepEqual(await rankCase(scorer, scoringCase(0), 5), []);
  });
});
