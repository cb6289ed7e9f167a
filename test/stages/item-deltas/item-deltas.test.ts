import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadInputError } from '../../../src/errors/index.ts';
import {
  changeIds,
  ItemDeltaWriter,
  mergeItemDeltas,
  RecentIds,
  routeItemDeltas,
  UnsentDeltas,
  type ItemDeltaMessage,
} from '../../../src/stages/item-deltas/index.ts';
import {
  applyItemDelta,
  cloneItem,
  validateItemDelta,
  type ItemMergeLimits,
} from '../../../src/store/item-merge.ts';
import type { ItemDelta, ItemProfile, VectorStore } from '../../../src/store/port.ts';

// No audience limit is reached in these tests, so a merged batch must leave the same item as the sequence.
// Co-occurrence lists are cut (`CUT_LIMITS`) in the tests that check the cut falls where the sequence's does.
const LIMITS: ItemMergeLimits = {
  dimension: 3,
  itemAudienceLength: 1_000,
  cooccurrenceLimit: 1_000,
  popularityShortHalfLifeMs: 86_400_000,
  popularityLongHalfLifeMs: 30 * 86_400_000,
};
const T0 = 1_700_000_000_000;
const v = (...xs: number[]) => Float32Array.from(xs);

/** Folds `deltas` into the items of `start` (absent = new), as a store does. */
function fold(
  deltas: readonly ItemDelta[],
  start: ReadonlyMap<string, ItemProfile> = new Map(),
  limits: ItemMergeLimits = LIMITS,
): Map<string, ItemProfile> {
  const items = new Map<string, ReturnType<typeof cloneItem>>();
  for (const d of deltas) {
    let item = items.get(d.itemId);
    if (!item) items.set(d.itemId, (item = cloneItem(start.get(d.itemId), d.itemId, limits.dimension)));
    applyItemDelta(item, d, limits);
  }
  return items;
}

/** A co-occurrence limit of 4 (cut at 5): the property tests below cut lists all the time. */
const CUT_LIMITS: ItemMergeLimits = { ...LIMITS, cooccurrenceLimit: 4 };

function assertSameItem(actual: ItemProfile, expected: ItemProfile): void {
  const id = expected.itemId;
  assert.equal(actual.interactionCount, expected.interactionCount, `${id} interactionCount`);
  assert.equal(actual.firstSeenMs, expected.firstSeenMs, `${id} firstSeenMs`);
  assert.equal(actual.lastSeenMs, expected.lastSeenMs, `${id} lastSeenMs`);
  assert.deepEqual(actual.recentUsers, expected.recentUsers, `${id} recentUsers`);
  for (const key of ['shortLog', 'longLog'] as const) {
    const [a, b] = [actual.popularity[key], expected.popularity[key]];
    assert.ok(a === b || Math.abs(a - b) <= 1e-9 * Math.abs(b), `${id} popularity.${key}: ${a} vs ${b}`);
  }
  for (let i = 0; i < expected.vector.length; i++) {
    assert.ok(
      Math.abs(actual.vector[i]! - expected.vector[i]!) <= 1e-4,
      `${id} vector[${i}]: ${actual.vector[i]} vs ${expected.vector[i]}`,
    );
  }
  assert.deepEqual(
    new Map([...actual.cooccurrence].sort()),
    new Map([...expected.cooccurrence].sort()),
    `${id} cooccurrence`,
  );
}

/** Deltas of the shapes the learner makes: counting (positive), vector-only (negative), co-occurrence-only. */
const deltaArb = fc
  .record({
    item: fc.constantFrom('a', 'b', 'c'),
    kind: fc.constantFrom('positive', 'negative', 'cooccurrence', 'seed-only'),
    atMs: fc.integer({ min: 0, max: 5 }).map((s) => T0 + s * 1_000),
    user: fc.constantFrom('u1', 'u2', 'u3'),
    step: fc.tuple(
      fc.integer({ min: -8, max: 8 }),
      fc.integer({ min: -8, max: 8 }),
      fc.integer({ min: -8, max: 8 }),
    ),
    seed: fc.boolean(),
    other: fc.constantFrom('x', 'y', 'a'),
  })
  .map(({ item, kind, atMs, user, step, seed, other }): ItemDelta => {
    const vectorDelta = v(...step.map((s) => s / 8));
    switch (kind) {
      case 'positive':
        return {
          itemId: item,
          atMs,
          ...(seed ? { initialVector: v(1, 2, 3) } : {}),
          vectorDelta,
          seenBy: { id: user, atMs },
          interactions: 1,
          cooccurrence: new Map([[other, 1]]),
        };
      case 'negative':
        return { itemId: item, atMs, vectorDelta, interactions: 0 };
      case 'cooccurrence':
        return { itemId: item, atMs, interactions: 0, cooccurrence: new Map([[other, 1]]) };
      default:
        return { itemId: item, atMs, initialVector: v(-1, 0, 1) };
    }
  });

const existing = new Map<string, ItemProfile>([
  [
    'b',
    {
      ...cloneItem(undefined, 'b', 3),
      vector: v(0.5, 0.5, 0.5),
      interactionCount: 3,
      firstSeenMs: T0 - 1,
      lastSeenMs: T0 + 2_500,
    },
  ],
]);

describe('mergeItemDeltas', () => {
  it('leaves every item as applying the deltas one by one would (new, unseen and existing items)', () => {
    fc.assert(
      fc.property(fc.array(deltaArb, { maxLength: 40 }), (deltas) => {
        const merged = mergeItemDeltas(deltas);
        assert.ok(merged.length <= deltas.length);
        const expected = fold(deltas, existing);
        const actual = fold(merged, existing);
        assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
        for (const [id, item] of expected) assertSameItem(actual.get(id)!, item);
      }),
      { numRuns: 300 },
    );
  });

  it('cuts co-occurrence lists where the deltas one by one cut them, whatever the batch boundaries', () => {
    const cooccurring = fc.record({
      item: fc.constantFrom('a', 'b'),
      others: fc.array(fc.constantFrom('o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7', 'o8'), { minLength: 1, maxLength: 3 }),
      atMs: fc.integer({ min: 0, max: 3 }).map((s) => T0 + s * 1_000),
      counting: fc.boolean(),
    }).map(({ item, others, atMs, counting }): ItemDelta => ({
      itemId: item,
      atMs,
      ...(counting ? { seenBy: { id: 'u', atMs }, interactions: 1 } : {}),
      cooccurrence: new Map(others.map((o) => [o, 1])),
    }));
    fc.assert(
      fc.property(fc.array(cooccurring, { maxLength: 60 }), fc.array(fc.nat(60), { maxLength: 4 }), (deltas, cuts) => {
        const expected = fold(deltas, new Map(), CUT_LIMITS);
        // The same deltas merged in batches that end anywhere, each folded into the state the last one left.
        const bounds = [0, ...cuts.map((c) => Math.min(c, deltas.length)).sort((x, y) => x - y), deltas.length];
        let state = new Map<string, ItemProfile>();
        for (let b = 1; b < bounds.length; b++) {
          const next = fold(mergeItemDeltas(deltas.slice(bounds[b - 1], bounds[b])), state, CUT_LIMITS);
          state = new Map([...state, ...next]);
        }
        for (const [id, item] of expected) assert.deepEqual(new Map([...state.get(id)!.cooccurrence].sort()), new Map([...item.cooccurrence].sort()), `${id} cooccurrence`);
      }),
      { numRuns: 300 },
    );
  });

  it('shrinks a learner-like batch to about one delta per interaction plus the seen-time bounds', () => {
    // 30 interactions on 3 items; each also makes 8 negative steps and 5 co-occurrence deltas.
    const deltas: ItemDelta[] = [];
    const items = ['a', 'b', 'c'];
    for (let e = 0; e < 30; e++) {
      const atMs = T0 + e;
      for (let n = 0; n < 8; n++)
        deltas.push({ itemId: items[(e + n) % 3]!, atMs, vectorDelta: v(0.01, 0, 0), interactions: 0 });
      deltas.push({
        itemId: items[e % 3]!,
        atMs,
        vectorDelta: v(0, 0.01, 0),
        seenBy: { id: `u${e}`, atMs },
        interactions: 1,
      });
      for (let p = 0; p < 5; p++)
        deltas.push({
          itemId: items[(e + p + 1) % 3]!,
          atMs,
          interactions: 0,
          cooccurrence: new Map([[items[e % 3]!, 1]]),
        });
    }
    const merged = mergeItemDeltas(deltas);
    assert.equal(deltas.length, 30 * 14);
    // Co-occurrence maps are never summed (each cuts in its turn): at most one delta per co-occurrence delta.
    const cooccurring = merged.filter((d) => d.cooccurrence !== undefined && !(d.interactions ?? 0));
    assert.ok(cooccurring.length <= 30 * 5, `${cooccurring.length} co-occurrence deltas`);
    assert.ok(merged.length - cooccurring.length <= 30 + 3 * 3, `${merged.length - cooccurring.length} other deltas after merging`);
    const expected = fold(deltas);
    const actual = fold(merged);
    for (const [id, item] of expected) assertSameItem(actual.get(id)!, item);
  });

  it('merges counting deltas of one time and user, keeps different users apart', () => {
    const same = { itemId: 'a', atMs: T0, seenBy: { id: 'u', atMs: T0 }, interactions: 1 };
    assert.equal(mergeItemDeltas([same, same]).length, 1);
    assert.equal(mergeItemDeltas([same, same])[0]!.interactions, 2);
    assert.equal(mergeItemDeltas([same, { ...same, seenBy: { id: 'w', atMs: T0 } }]).length, 2);
  });
});

describe('routeItemDeltas', () => {
  it('makes one message per source partition and item, one change per interaction, in learned order', () => {
    const source = (partition: number, offset: string) => ({ topic: 'ix', partition, offset });
    const messages = routeItemDeltas([
      {
        source: source(0, '10'),
        deltas: [
          { itemId: 'n', atMs: T0, vectorDelta: v(1, 0, 0), interactions: 0 },
          { itemId: 'a', atMs: T0, seenBy: { id: 'u', atMs: T0 }, interactions: 1 },
          // The same item as a negative and a previous item of one interaction: one change.
          { itemId: 'n', atMs: T0, interactions: 0, cooccurrence: new Map([['a', 1]]) },
        ],
      },
      {
        source: source(0, '11'),
        deltas: [{ itemId: 'a', atMs: T0 + 1, seenBy: { id: 'w', atMs: T0 + 1 }, interactions: 1 }],
      },
      {
        source: source(1, '7'),
        deltas: [{ itemId: 'a', atMs: T0 + 2, seenBy: { id: 'z', atMs: T0 + 2 }, interactions: 1 }],
      },
    ]);
    assert.deepEqual(
      messages.map((m) => [m.sourcePartition, m.itemId, m.changes.map((c) => c.sourceOffset)]),
      [
        [0, 'n', ['10']],
        [0, 'a', ['10', '11']],
        [1, 'a', ['7']],
      ],
    );
    const n = messages[0]!.changes[0]!.delta;
    assert.deepEqual([...n.vectorDelta!], [1, 0, 0]);
    assert.deepEqual([...n.cooccurrence!], [['a', 1]]);
    assert.deepEqual(changeIds(messages[1]!), ['ix:0:10:0:a', 'ix:0:11:0:a']);
  });
});

describe('UnsentDeltas', () => {
  const at = (offset: number) => ({ source: { topic: 'ix', partition: 0, offset: String(offset) }, deltas: [{ itemId: 'a', atMs: offset }] });

  it('keeps an event\'s deltas until its outputs are published, and forgets the oldest past its capacity', () => {
    const unsent = new UnsentDeltas(2);
    const first = [at(1), at(2)];
    unsent.add(first);
    assert.equal(unsent.get(at(1).source), first[0]);
    unsent.add([at(3)]);
    assert.equal(unsent.get(at(1).source), undefined, 'the oldest forgotten past the capacity');
    unsent.published(first);
    assert.equal(unsent.get(at(2).source), undefined);
    assert.ok(unsent.get(at(3).source));
    // A redelivered event re-sends the entry it got: publishing the new batch forgets it too.
    const again = [unsent.get(at(3).source)!];
    unsent.add(again);
    unsent.published(again);
    assert.equal(unsent.size, 0);
  });
});

describe('RecentIds', () => {
  it('forgets the oldest ids past its capacity', () => {
    const ids = new RecentIds(2);
    for (const id of ['a', 'b', 'a', 'c']) ids.add(id);
    assert.deepEqual(
      ['a', 'b', 'c'].map((id) => ids.has(id)),
      [false, true, true],
    );
    assert.equal(ids.size, 2);
    const none = new RecentIds(0);
    none.add('a');
    assert.equal(none.has('a'), false);
  });
});

describe('ItemDeltaWriter', () => {
  /** A store that records `applyItemDeltas` calls and fails them while `failing` is set. */
  function recordingStore() {
    const calls: ItemDelta[][] = [];
    const state = { failing: false };
    const store = {
      applyItemDeltas: async (deltas: readonly ItemDelta[]) => {
        if (state.failing) throw new Error('store down');
        calls.push([...deltas]);
      },
    } as unknown as VectorStore;
    return { store, calls, state };
  }
  const writerFor = (store: VectorStore, dedupeWindow = 100) =>
    new ItemDeltaWriter(store, { dedupeWindow, validate: (d) => validateItemDelta(d, LIMITS.dimension) });
  const message = (offsets: string[], itemId = 'a', partition = 0): ItemDeltaMessage => ({
    itemId,
    sourceTopic: 'ix',
    sourcePartition: partition,
    changes: offsets.map((offset, i) => ({
      sourceOffset: offset,
      delta: {
        itemId,
        atMs: T0 + Number(offset),
        seenBy: { id: `u${i}`, atMs: T0 + Number(offset) },
        interactions: 1,
      },
    })),
  });
  const interactionsIn = (calls: ItemDelta[][]) =>
    calls.flat().reduce((n, d) => n + (d.interactions ?? 0), 0);

  it('applies a batch in one store call and skips changes it has already applied', async () => {
    const { store, calls } = recordingStore();
    const writer = writerFor(store);
    const first = await writer.write([message(['1', '2']), message(['1'], 'b')]);
    assert.deepEqual(first, { changes: 3, duplicates: 0, applied: 3 });
    assert.equal(calls.length, 1);
    // A redelivered message (the same source offsets) next to a new one: only the new change is applied.
    const second = await writer.write([message(['1', '2']), message(['3'])]);
    assert.deepEqual(second, { changes: 3, duplicates: 2, applied: 1 });
    assert.equal(interactionsIn(calls), 4);
    // The same source offset from another partition is another change.
    await writer.write([message(['1'], 'a', 1)]);
    assert.equal(interactionsIn(calls), 5);
  });

  it('skips repeats within one batch', async () => {
    const { store, calls } = recordingStore();
    const result = await writerFor(store).write([message(['1']), message(['1'])]);
    assert.deepEqual(result, { changes: 2, duplicates: 1, applied: 1 });
    assert.equal(interactionsIn(calls), 1);
  });

  it('remembers nothing from a failed write, so the redelivered batch is applied in full', async () => {
    const { store, calls, state } = recordingStore();
    const writer = writerFor(store);
    state.failing = true;
    await assert.rejects(writer.write([message(['1', '2'])]), /store down/);
    state.failing = false;
    assert.equal((await writer.write([message(['1', '2'])])).duplicates, 0);
    assert.equal(interactionsIn(calls), 2);
  });

  it('without a window, applies repeats again (at-least-once)', async () => {
    const { store, calls } = recordingStore();
    const writer = writerFor(store, 0);
    await writer.write([message(['1'])]);
    await writer.write([message(['1'])]);
    assert.equal(interactionsIn(calls), 2);
  });

  it('check() refuses a message with an invalid delta as bad input', () => {
    const { store } = recordingStore();
    const bad: ItemDeltaMessage = {
      ...message(['1']),
      changes: [{ sourceOffset: '1', delta: { itemId: 'a', atMs: T0, vectorDelta: v(1, 2) } }],
    };
    assert.throws(
      () => writerFor(store).check(bad),
      (err: unknown) => err instanceof BadInputError && err.code === 'STORE_INVALID_DELTA',
    );
    assert.doesNotThrow(() => writerFor(store).check(message(['1'])));
  });
});
