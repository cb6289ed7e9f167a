import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadInputError } from '../../src/errors/index.ts';
import {
  applyItemDelta,
  applyItemMetadata,
  cloneItem,
  isUnseenItem,
  mergeItemDelta,
  mergeRecent,
  type ItemMergeLimits,
} from '../../src/store/item-merge.ts';
import { CooccurrenceLists } from '../../src/store/embedded/state/cooccurrence.ts';
import { EMPTY_LOG_SUM, logAddEvent } from '../../src/store/popularity.ts';
import type { ItemDelta, ItemProfile } from '../../src/store/port.ts';

const LIMITS: ItemMergeLimits = {
  dimension: 3,
  itemAudienceLength: 3,
  cooccurrenceLimit: 2,
  popularityShortHalfLifeMs: 86_400_000,
  popularityLongHalfLifeMs: 30 * 86_400_000,
};

const v = (...xs: number[]) => Float32Array.from(xs);
const fold = (deltas: readonly ItemDelta[], start?: ItemProfile) =>
  deltas.reduce<ItemProfile | undefined>((p, d) => mergeItemDelta(p, d, LIMITS), start)!;

describe('mergeItemDelta', () => {
  it('a new item takes initialVector plus vectorDelta; counts, popularity and seen times follow', () => {
    const item = mergeItemDelta(
      undefined,
      {
        itemId: 'i',
        initialVector: v(1, 2, 3),
        vectorDelta: v(0.5, 0.5, 0.5),
        interactions: 2,
        atMs: 1000,
        seenBy: { id: 'u', atMs: 1000 },
      },
      LIMITS,
    );
    assert.deepEqual([...item.vector], [1.5, 2.5, 3.5]);
    assert.equal(item.interactionCount, 2);
    assert.equal(
      item.popularity.longLog,
      logAddEvent(EMPTY_LOG_SUM, 1000, LIMITS.popularityLongHalfLifeMs, 2),
    );
    assert.equal(
      item.popularity.shortLog,
      logAddEvent(EMPTY_LOG_SUM, 1000, LIMITS.popularityShortHalfLifeMs, 2),
    );
    assert.deepEqual(item.recentUsers, [{ id: 'u', atMs: 1000 }]);
    assert.equal(item.firstSeenMs, 1000);
    assert.equal(item.lastSeenMs, 1000);
    assert.equal(isUnseenItem(item), false);
  });

  it('initialVector is ignored once the item exists; vectorDelta adds', () => {
    const first = fold([{ itemId: 'i', initialVector: v(1, 1, 1), atMs: 5 }]);
    const second = mergeItemDelta(
      first,
      { itemId: 'i', initialVector: v(9, 9, 9), vectorDelta: v(1, 0, -1), atMs: 3 },
      LIMITS,
    );
    assert.deepEqual([...second.vector], [2, 1, 0]);
    assert.equal(second.firstSeenMs, 3);
    assert.equal(second.lastSeenMs, 5);
    assert.deepEqual([...first.vector], [1, 1, 1], 'input not modified');
  });

  it('a delta without interactions leaves counts and popularity alone', () => {
    const item = fold([{ itemId: 'i', atMs: 5, cooccurrence: new Map([['j', 1]]) }]);
    assert.equal(item.interactionCount, 0);
    assert.equal(item.popularity.longLog, EMPTY_LOG_SUM);
  });

  it('recentUsers keeps each user once at their latest time, most recent first, bounded', () => {
    const item = fold(
      [
        { id: 'a', atMs: 1 },
        { id: 'b', atMs: 2 },
        { id: 'a', atMs: 5 },
        { id: 'c', atMs: 3 },
        { id: 'd', atMs: 0 },
      ].map((seenBy) => ({ itemId: 'i', seenBy, atMs: seenBy.atMs })),
    );
    assert.deepEqual(item.recentUsers, [
      { id: 'a', atMs: 5 },
      { id: 'c', atMs: 3 },
      { id: 'b', atMs: 2 },
    ]);
  });

  it('cooccurrence adds counts, drops self, keeps the largest (ties by id)', () => {
    const item = fold([
      {
        itemId: 'i',
        atMs: 1,
        cooccurrence: new Map([
          ['x', 1],
          ['y', 2],
          ['i', 9],
        ]),
      },
      {
        itemId: 'i',
        atMs: 2,
        cooccurrence: new Map([
          ['z', 2],
          ['x', 2],
        ]),
      },
    ]);
    // The cut is checked at each new key (limit 2: a third key cuts): z's arrival cuts x (1) out, so x comes
    // back with the second delta's 2 alone, and the three-way tie at 2 keeps the smaller ids.
    assert.deepEqual(
      byCount(item.cooccurrence),
      [
        ['x', 2],
        ['y', 2],
      ],
    );
    // One delta's keys cut as they come: the third key overflows a limit of 2, and the tie keeps the smaller ids.
    const tied = fold([{ itemId: 'self', atMs: 1, cooccurrence: new Map([['b', 1], ['a', 1], ['c', 1]]) }]);
    assert.deepEqual(byCount(tied.cooccurrence), [
      ['a', 1],
      ['b', 1],
    ]);
  });

  it('cuts co-occurrence exactly as the embedded store\'s typed lists do, key by key (the tiered store mixes both)', () => {
    const others = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
    const delta = fc.uniqueArray(fc.constantFrom(...others), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(fc.array(delta, { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), (keys, limit) => {
        const limits = { ...LIMITS, cooccurrenceLimit: limit };
        const item = cloneItem(undefined, 'i', 3);
        // Slot 0 is the item itself ('i'), as in the typed state; others by their index.
        const lists = new CooccurrenceLists(limit, (x, y) => (others[x]! < others[y]! ? -1 : others[x]! > others[y]! ? 1 : 0));
        for (const [k, ids] of keys.entries()) {
          applyItemDelta(item, { itemId: 'i', atMs: k, cooccurrence: new Map(ids.map((id) => [id, 1])) }, limits);
          for (const id of ids) lists.add(others.indexOf('i'), others.indexOf(id), 1);
        }
        const typed = new Map<string, number>();
        for (let k = 0; k < lists.length(others.indexOf('i')); k++) typed.set(others[lists.keyAt(others.indexOf('i'), k)]!, lists.countAt(others.indexOf('i'), k));
        assert.deepEqual(byCount(item.cooccurrence), byCount(typed));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects bad deltas with BadInputError', () => {
    const bad: ItemDelta[] = [
      { itemId: 'i', atMs: Number.NaN },
      { itemId: 'i', atMs: 1, vectorDelta: v(1, 2) },
      { itemId: 'i', atMs: 1, initialVector: v(1, Number.NaN, 0) },
      { itemId: 'i', atMs: 1, interactions: -1 },
      { itemId: 'i', atMs: 1, cooccurrence: new Map([['j', 0]]) },
      { itemId: '', atMs: 1 },
    ];
    for (const delta of bad) {
      assert.throws(
        () => mergeItemDelta(undefined, delta, LIMITS),
        (err) => err instanceof BadInputError,
      );
    }
  });

  it('metadata creates an unseen item whose first delta still seeds the vector', () => {
    const meta = applyItemMetadata(undefined, { itemId: 'i', title: 'T', categories: ['c'] }, 3);
    assert.equal(isUnseenItem(meta), true);
    assert.deepEqual([...meta.vector], [0, 0, 0]);
    const seen = mergeItemDelta(
      meta,
      { itemId: 'i', initialVector: v(1, 2, 3), interactions: 1, atMs: 7 },
      LIMITS,
    );
    assert.deepEqual([...seen.vector], [1, 2, 3]);
    assert.equal(seen.title, 'T');
    assert.deepEqual(seen.categories, ['c']);
    assert.equal(seen.firstSeenMs, 7);
    assert.equal(seen.lastSeenMs, 7);
    const retitled = applyItemMetadata(seen, { itemId: 'i', title: 'U', categories: [] }, 3);
    assert.equal(retitled.interactionCount, 1);
    assert.equal(retitled.vector, seen.vector);
  });

  it('mergeRecent is order-independent', () => {
    const timed = fc.record({
      id: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
      atMs: fc.integer({ min: 0, max: 20 }),
    });
    fc.assert(
      fc.property(fc.array(timed, { maxLength: 15 }), (list) => {
        const forward = list.reduce<ReturnType<typeof mergeRecent>>((acc, t) => mergeRecent(acc, [t], 3), []);
        const backward = [...list]
          .reverse()
          .reduce<ReturnType<typeof mergeRecent>>((acc, t) => mergeRecent(acc, [t], 3), []);
        assert.deepEqual(forward, backward);
      }),
      { numRuns: 200 },
    );
  });

  it('folding deltas in any order gives the same item (exact vector steps, no truncated cooccurrence)', () => {
    const limits = { ...LIMITS, cooccurrenceLimit: 100 };
    const delta = fc.record({
      vd: fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 3, maxLength: 3 }),
      n: fc.integer({ min: 0, max: 3 }),
      at: fc.integer({ min: 0, max: 1_000_000 }),
      user: fc.constantFrom('u1', 'u2', 'u3', 'u4'),
      co: fc.constantFrom('a', 'b', 'c'),
    });
    fc.assert(
      fc.property(fc.array(delta, { minLength: 1, maxLength: 10 }), (raw) => {
        const deltas: ItemDelta[] = raw.map((d) => ({
          itemId: 'i',
          initialVector: v(1, 1, 1),
          vectorDelta: v(...d.vd.map((x) => x / 4)),
          interactions: d.n,
          atMs: d.at,
          seenBy: { id: d.user, atMs: d.at },
          cooccurrence: new Map([[d.co, 1]]),
        }));
        const apply = (list: ItemDelta[]) =>
          list.reduce<ItemProfile | undefined>((p, d) => mergeItemDelta(p, d, limits), undefined)!;
        const a = apply(deltas);
        const b = apply([...deltas].reverse());
        assert.deepEqual([...a.vector], [...b.vector]);
        assert.equal(a.interactionCount, b.interactionCount);
        assert.ok(
          Math.abs(a.popularity.longLog - b.popularity.longLog) < 1e-9 ||
            a.popularity.longLog === b.popularity.longLog,
        );
        assert.deepEqual(a.recentUsers, b.recentUsers);
        assert.deepEqual(byCount(a.cooccurrence), byCount(b.cooccurrence));
        assert.equal(a.firstSeenMs, b.firstSeenMs);
        assert.equal(a.lastSeenMs, b.lastSeenMs);
      }),
      { numRuns: 200 },
    );
  });
});

/** Co-occurrence entries largest first, ties by id: the stores promise which entries, not their order. */
function byCount(counts: ReadonlyMap<string, number>): [string, number][] {
  return [...counts].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}
