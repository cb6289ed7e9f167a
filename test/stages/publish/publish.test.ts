import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Interaction } from '../../../src/domain/events.ts';
import type { CollaborativeEvidence } from '../../../src/domain/evidence.ts';
import { buildRecommendation, UserRateLimiter } from '../../../src/stages/publish/index.ts';
import type { RankedCandidate } from '../../../src/stages/ranking/index.ts';

let seq = 0;
const ev = (): string => `e${seq++}`;

describe('UserRateLimiter', () => {
  it('allows the event it last allowed again: a redelivered batch publishes what its failed attempt would have', () => {
    const limiter = new UserRateLimiter(1_000);
    assert.equal(limiter.allow('u', 5_000, 'e-1'), true);
    assert.equal(limiter.allow('u', 5_000, 'e-1'), true, 'the same event, redelivered');
    assert.equal(limiter.allow('u', 5_000, 'e-2'), false, 'another event at the same time is limited');
    assert.equal(limiter.allow('u', 5_500, 'e-3'), false);
    assert.equal(limiter.allow('u', 6_000, 'e-4'), true);
    // The whole batch again: the same answers.
    assert.deepEqual([['e-1', 5_000], ['e-2', 5_000], ['e-3', 5_500], ['e-4', 6_000]].map(([e, t]) => limiter.allow('u', t as number, e as string)), [true, false, false, true]);
  });

  it('allows one recommendation per user per interval, in event time', () => {
    const limiter = new UserRateLimiter(1_000);
    const t = Date.UTC(2020, 0, 1); // event time far from the wall clock
    assert.equal(limiter.allow('u', t, ev()), true);
    assert.equal(limiter.allow('u', t + 999, ev()), false);
    assert.equal(limiter.allow('u', t + 500, ev()), false);
    assert.equal(limiter.allow('u', t + 1_000, ev()), true);
    assert.equal(limiter.allow('u', t + 1_999, ev()), false, 'measured from the last allowed event');
    assert.equal(limiter.allow('v', t + 1_001, ev()), true, 'users are independent');
  });

  it('does not count refused events as publications', () => {
    const limiter = new UserRateLimiter(1_000);
    assert.ok(limiter.allow('u', 0 + 5_000, ev()));
    for (let t = 5_100; t < 6_000; t += 100) assert.ok(!limiter.allow('u', t, ev()));
    assert.ok(limiter.allow('u', 6_000, ev()));
  });

  it('allows every event with an interval of 0', () => {
    const limiter = new UserRateLimiter(0);
    for (let i = 0; i < 5; i++) assert.ok(limiter.allow('u', 1_000, ev()));
  });

  it('bounds memory: the least recently published user is forgotten first', () => {
    const limiter = new UserRateLimiter(1_000, 2);
    assert.ok(limiter.allow('a', 10_000, ev()));
    assert.ok(limiter.allow('b', 10_000, ev()));
    assert.ok(limiter.allow('c', 10_000, ev())); // forgets a
    assert.ok(limiter.allow('a', 10_001, ev()), 'a was forgotten, so it is allowed again');
    // tracked now: c, a (b forgotten when a came back)
    assert.ok(!limiter.allow('c', 10_002, ev()), 'c is still tracked');
    assert.ok(limiter.allow('b', 10_003, ev()), 'b was forgotten');
  });

  it('keeps a recently published user over an older one (LRU, not FIFO)', () => {
    const limiter = new UserRateLimiter(100, 2);
    assert.ok(limiter.allow('a', 0, ev()));
    assert.ok(limiter.allow('b', 50, ev()));
    assert.ok(limiter.allow('a', 100, ev())); // a moves to the most recent end
    assert.ok(limiter.allow('c', 120, ev())); // evicts b, not a
    assert.ok(!limiter.allow('a', 150, ev()), 'a is still limited');
    assert.ok(limiter.allow('b', 121, ev()), 'b was evicted');
  });
});

describe('buildRecommendation', () => {
  const event: Interaction = { eventId: 'evt-42', userId: 'u7', itemId: 'i1', type: 'click', value: null, timestampMs: 1_000, context: {} };
  const evidence = (itemId: string, sentences: string[]): CollaborativeEvidence => ({
    itemId,
    title: null,
    categories: [],
    sources: ['cooccurrence'],
    features: { cooccurrence: 1, cooccurrenceRecent: 1, cooccurringRecentItems: 1, neighbourEngagement: 0, embeddingScore: 0, popularity: 0, recentPopularity: 0, trend: 1, categoryFit: 0 },
    sentences,
  });

  it('carries the triggering event id, the user, the ranked items with evidence, the model and the latency', () => {
    const ranked: RankedCandidate[] = [
      { evidence: evidence('i9', ['Co-occurs 1 times…']), score: 2.5 },
      { evidence: evidence('i3', []), score: 1 },
    ];
    const rec = buildRecommendation(event, ranked, 'baseline-1', 5_000, 5_042);
    assert.deepEqual(rec, {
      eventId: 'evt-42',
      userId: 'u7',
      items: [
        { itemId: 'i9', score: 2.5, evidence: ['Co-occurs 1 times…'] },
        { itemId: 'i3', score: 1, evidence: [] },
      ],
      modelVersion: 'baseline-1',
      arm: null,
      generatedAtMs: 5_042,
      pipelineLatencyMs: 42,
    });
  });

  it('publishes an empty list when nothing was ranked', () => {
    const rec = buildRecommendation(event, [], 'm', 10, 10);
    assert.deepEqual(rec.items, []);
    assert.equal(rec.pipelineLatencyMs, 0);
    assert.equal(rec.eventId, 'evt-42');
  });
});
