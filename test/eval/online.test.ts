import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Interaction } from '../../src/domain/events.ts';
import type { CollaborativeEvidence } from '../../src/domain/evidence.ts';
import { OnlineHitRate } from '../../src/eval/online.ts';
import type { RankedEvent } from '../../src/pipeline/processor.ts';

function candidate(itemId: string, popularity: number): CollaborativeEvidence {
  return {
    itemId,
    title: null,
    categories: [],
    sources: ['popular'],
    features: { cooccurrence: 0, cooccurrenceRecent: 0, cooccurringRecentItems: 0, neighbourEngagement: 0, embeddingScore: 0, popularity, recentPopularity: 0, trend: 1, categoryFit: 0 },
    sentences: [],
  };
}

/** The user's event on `itemId`, after which `served` was recommended from `candidates` (by popularity). */
function ranked(userId: string, itemId: string, served: string[], popularity: Record<string, number> = {}): RankedEvent {
  const candidates = [...new Set([...served, ...Object.keys(popularity)])].map((id) => candidate(id, popularity[id] ?? 0));
  const event: Interaction = { eventId: `${userId}-${itemId}`, userId, itemId, type: 'view', value: null, timestampMs: 1, context: {} };
  return {
    event,
    ranked: served.map((id, i) => ({ evidence: candidates.find((c) => c.itemId === id)!, score: served.length - i })),
    candidates,
    modelVersion: 'test',
  };
}

describe('OnlineHitRate', () => {
  it('counts a case when the user\'s next event arrives, a hit when its item was served', () => {
    const rate = new OnlineHitRate(2);
    rate.observe(ranked('u', 'a', ['b', 'c', 'd'], { x: 100, y: 50, b: 1 }));
    assert.equal(rate.cases, 0, 'no case before the next event');
    rate.observe(ranked('v', 'b', ['a']));
    assert.equal(rate.cases, 0, 'another user\'s event is not u\'s next event');
    rate.observe(ranked('u', 'c', ['e'])); // c was served at rank 2 of K = 2
    assert.equal(rate.cases, 1);
    assert.equal(rate.servedHits, 1);
    assert.equal(rate.popularHits, 0, 'popularity would have served x, y');
    rate.observe(ranked('u', 'd', [])); // d was not served after c (only e)
    assert.equal(rate.cases, 2);
    assert.equal(rate.servedHits, 1);
    assert.equal(rate.servedRate, 0.5);
  });

  it('only counts the top K of what was served', () => {
    const rate = new OnlineHitRate(1);
    rate.observe(ranked('u', 'a', ['b', 'c']));
    rate.observe(ranked('u', 'c', []));
    assert.equal(rate.servedHits, 0, 'c was served at rank 2 but K = 1');
  });

  it('tracks popularity over the same candidates as the baseline figure', () => {
    const rate = new OnlineHitRate(1);
    rate.observe(ranked('u', 'a', ['b'], { b: 1, hot: 9 }));
    rate.observe(ranked('u', 'hot', []));
    assert.equal(rate.popularHits, 1);
    assert.equal(rate.servedHits, 0);
    assert.equal(rate.popularRate, 1);
    assert.equal(rate.servedRate, 0);
  });

  it('reports 0 rates before any case', () => {
    const rate = new OnlineHitRate(10);
    assert.equal(rate.servedRate, 0);
    assert.equal(rate.popularRate, 0);
  });

  it('forgets the least recently active users beyond maxUsers', () => {
    const rate = new OnlineHitRate(5, 2);
    rate.observe(ranked('u1', 'a', ['x']));
    rate.observe(ranked('u2', 'a', ['x']));
    rate.observe(ranked('u3', 'a', ['x'])); // forgets u1
    rate.observe(ranked('u1', 'x', []));
    assert.equal(rate.cases, 0, 'u1\'s previous list was forgotten');
    rate.observe(ranked('u3', 'x', []));
    assert.equal(rate.cases, 1);
    assert.equal(rate.servedHits, 1);
  });
});
