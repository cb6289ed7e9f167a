import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HistoryTracker, totalVariation, type SliceRules } from '../../src/eval/slices.ts';

const RULES: SliceRules = { coldUserMinInteractions: 3, coldItemMinInteractions: 2, recentItems: 2, minLongTermItems: 3, minDistance: 0.5 };

function tracker(): HistoryTracker {
  return new HistoryTracker(
    [
      { itemId: 'd1', categories: ['Drama'] },
      { itemId: 'd2', categories: ['Drama'] },
      { itemId: 'd3', categories: ['Drama'] },
      { itemId: 'c1', categories: ['Comedy'] },
      { itemId: 'c2', categories: ['Comedy'] },
      { itemId: 'dc', categories: ['Drama', 'Comedy'] },
      { itemId: 'x', categories: [] },
    ],
    RULES,
  );
}

describe('scenario slices', () => {
  it('cold-user: fewer than the threshold of interactions before the event (the event itself not counted)', () => {
    const t = tracker();
    const seen: boolean[] = [];
    for (const item of ['d1', 'd2', 'd3', 'c1']) {
      seen.push(t.tag({ userId: 'u', itemId: item }).slices.includes('cold-user'));
      t.observe({ userId: 'u', itemId: item });
    }
    assert.deepEqual(seen, [true, true, true, false]);
    assert.equal(t.tag({ userId: 'u', itemId: 'x' }).userInteractions, 4);
    assert.ok(t.tag({ userId: 'other', itemId: 'x' }).slices.includes('cold-user'), 'a user never seen is cold');
  });

  it('cold-item: the true item had fewer than the threshold of interactions by anyone', () => {
    const t = tracker();
    assert.ok(t.tag({ userId: 'a', itemId: 'd1' }).slices.includes('cold-item'), 'brand new');
    t.observe({ userId: 'a', itemId: 'd1' });
    assert.ok(t.tag({ userId: 'b', itemId: 'd1' }).slices.includes('cold-item'));
    t.observe({ userId: 'b', itemId: 'd1' });
    const tags = t.tag({ userId: 'c', itemId: 'd1' });
    assert.equal(tags.itemInteractions, 2);
    assert.ok(!tags.slices.includes('cold-item'));
  });

  it('evolving: recent category mix far from the long-term one, only with enough history', () => {
    const t = tracker();
    const feed = (items: string[]): void => items.forEach((itemId) => t.observe({ userId: 'u', itemId }));
    feed(['d1', 'd2', 'd3', 'c1']);
    assert.equal(t.tag({ userId: 'u', itemId: 'x' }).interestShift, null, '4 < 2 recent + 3 long-term');
    feed(['c2']);
    // long-term d1 d2 d3 (all Drama), recent c1 c2 (all Comedy): disjoint, distance 1.
    const shifted = t.tag({ userId: 'u', itemId: 'x' });
    assert.equal(shifted.interestShift, 1);
    assert.deepEqual(shifted.slices, ['all', 'cold-item', 'evolving'], 'x is new to the stream as well');

    const steady = tracker();
    ['d1', 'd2', 'c1', 'd3', 'dc'].forEach((itemId) => steady.observe({ userId: 'v', itemId }));
    // long-term d1 d2 c1: Drama 2/3, Comedy 1/3; recent d3 dc: Drama 3/4, Comedy 1/4 → distance 1/12.
    const tags = steady.tag({ userId: 'v', itemId: 'x' });
    assert.ok(Math.abs(tags.interestShift! - 1 / 12) < 1e-12);
    assert.ok(!tags.slices.includes('evolving'));
  });

  it('evolving: items without categories do not count, and a side with none leaves the case out', () => {
    const t = tracker();
    ['d1', 'd2', 'd3', 'x', 'x'].forEach((itemId) => t.observe({ userId: 'u', itemId }));
    assert.equal(t.tag({ userId: 'u', itemId: 'd1' }).interestShift, null);
  });

  it('total variation is symmetric, 0 for equal mixes, 1 for disjoint ones', () => {
    const p = new Map([['a', 0.5], ['b', 0.5]]);
    const q = new Map([['b', 0.25], ['c', 0.75]]);
    assert.equal(totalVariation(p, p), 0);
    assert.equal(totalVariation(p, q), totalVariation(q, p));
    assert.equal(totalVariation(p, q), 0.75);
    assert.equal(totalVariation(new Map([['a', 1]]), new Map([['b', 1]])), 1);
  });
});
