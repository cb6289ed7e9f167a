import { createRng } from '../../src/data/random.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { BadInputError } from '../../src/errors/index.ts';
import { EMPTY_LOG_SUM, decayedCount, logAddEvent } from '../../src/store/popularity.ts';
import type { ItemDelta, ItemProfile, UserProfile, VectorStore } from '../../src/store/port.ts';
import { bloomAdd, createBloom } from '../../src/util/bloom.ts';

/**
 * The `VectorStore` contract: every adapter runs this suite (`runVectorStoreContract`). Each test gets a fresh,
 * empty store from `makeStore`, calls `init()` itself, and always closes and cleans up.
 *
 * `makeStore` receives the limits the assertions rely on (small, so bounds are reached quickly); an adapter
 * that takes a `store` config section can build one with `contractStoreConfig(opts)`.
 */

export interface ContractStoreOptions {
  readonly dimension: number;
  readonly userHistoryLength: number;
  readonly itemAudienceLength: number;
  readonly cooccurrenceLimit: number;
  readonly consumedFilterBytes: number;
  readonly popularityShortHalfLifeMs: number;
  readonly popularityLongHalfLifeMs: number;
}

export interface StoreUnderTest {
  readonly store: VectorStore;
  cleanup(): Promise<void>;
}

export type MakeStore = (opts: ContractStoreOptions) => Promise<StoreUnderTest>;

export interface ContractOptions {
  /** @default 8 */
  readonly dimension?: number;
  /** A reason to skip the whole suite (shown by the test runner), e.g. no Qdrant reachable. */
  readonly skip?: string | false;
}

const DAY = 86_400_000;
const T0 = 1_760_000_000_000;

/** The `store` config section with the contract's limits (and `overrides` on top, e.g. `{ qdrant: {...} }`). */
export function contractStoreConfig(
  opts: ContractStoreOptions,
  overrides: Record<string, unknown> = {},
): Config['store'] {
  return parseConfig({ store: { ...opts, ...overrides } }).store;
}

export function runVectorStoreContract(
  name: string,
  makeStore: MakeStore,
  options: ContractOptions = {},
): void {
  const opts: ContractStoreOptions = {
    dimension: options.dimension ?? 8,
    userHistoryLength: 5,
    itemAudienceLength: 4,
    cooccurrenceLimit: 3,
    consumedFilterBytes: 64,
    popularityShortHalfLifeMs: DAY,
    popularityLongHalfLifeMs: 30 * DAY,
  };
  const d = opts.dimension;
  const rng = createRng(42);
  const rand = (): number => rng.next();
  const randomVector = () => Float32Array.from({ length: d }, () => Math.fround(rand() * 2 - 1));
  const filled = (x: number) => new Float32Array(d).fill(x);

  async function withStore(fn: (store: VectorStore) => Promise<void>): Promise<void> {
    const { store, cleanup } = await makeStore(opts);
    try {
      await store.init();
      await fn(store);
    } finally {
      try {
        await store.close();
      } finally {
        await cleanup();
      }
    }
  }

  function user(userId: string, vector = randomVector(), at = T0): UserProfile {
    const consumed = createBloom(opts.consumedFilterBytes);
    bloomAdd(consumed, `${userId}-a`);
    return {
      userId,
      vector,
      recentItems: [
        { id: `${userId}-a`, atMs: at },
        { id: `${userId}-b`, atMs: at - 1000 },
      ],
      interactionCount: 7,
      consumed,
      firstSeenMs: at - 5000,
      lastSeenMs: at,
    };
  }

  describe(`VectorStore contract: ${name}`, { skip: options.skip || false }, () => {
    it('init is idempotent; a new store is empty', () =>
      withStore(async (store) => {
        await store.init();
        assert.deepEqual(await store.counts(), { users: 0, items: 0 });
        assert.deepEqual(await store.searchItems(randomVector(), 5), []);
        assert.deepEqual(await store.popularItems(5, T0), []);
      }));

    it('users round-trip exactly (Float32 vectors, history, Bloom filter, counts)', () =>
      withStore(async (store) => {
        const u = user('u1');
        await store.putUsers([u, user('u2')]);
        const got = (await store.getUsers(['u1'])).get('u1');
        assert.ok(got);
        assert.equal(got.userId, 'u1');
        assert.deepEqual([...got.vector], [...u.vector]);
        assert.deepEqual(got.recentItems, u.recentItems);
        assert.equal(got.interactionCount, 7);
        assert.deepEqual([...got.consumed], [...u.consumed]);
        assert.equal(got.firstSeenMs, u.firstSeenMs);
        assert.equal(got.lastSeenMs, u.lastSeenMs);
      }));

    it('putUsers replaces a user: the last write wins, also within one call', () =>
      withStore(async (store) => {
        await store.putUsers([user('u', filled(1))]);
        await store.putUsers([user('u', filled(2)), { ...user('u', filled(3)), interactionCount: 9 }]);
        const got = (await store.getUsers(['u'])).get('u');
        assert.deepEqual([...got!.vector], [...filled(3)]);
        assert.equal(got!.interactionCount, 9);
        assert.deepEqual(await store.counts(), { users: 1, items: 0 });
      }));

    it('getUsers/getItems leave missing ids out of the map, without error', () =>
      withStore(async (store) => {
        await store.putUsers([user('present')]);
        await store.applyItemDeltas([{ itemId: 'item', initialVector: randomVector(), atMs: T0 }]);
        const users = await store.getUsers(['present', 'absent', 'present']);
        assert.deepEqual([...users.keys()], ['present']);
        const items = await store.getItems(['nope', 'item']);
        assert.deepEqual([...items.keys()], ['item']);
        assert.equal((await store.getUsers([])).size, 0);
        assert.equal((await store.getItems(['x', 'y'])).size, 0);
      }));

    it('applyItemDeltas: a new item takes initialVector, vectorDelta adds, counts and popularity add', () =>
      withStore(async (store) => {
        const initial = randomVector();
        await store.applyItemDeltas([
          { itemId: 'i', initialVector: initial, interactions: 1, atMs: T0, seenBy: { id: 'u1', atMs: T0 } },
        ]);
        let item = (await store.getItems(['i'])).get('i')!;
        assert.deepEqual([...item.vector], [...initial]);
        assert.equal(item.interactionCount, 1);
        assert.deepEqual(item.recentUsers, [{ id: 'u1', atMs: T0 }]);
        assert.equal(item.title, null);
        assert.deepEqual(item.categories, []);

        await store.applyItemDeltas([
          {
            itemId: 'i',
            initialVector: filled(9),
            vectorDelta: filled(0.5),
            interactions: 2,
            atMs: T0 - 100,
          },
        ]);
        item = (await store.getItems(['i'])).get('i')!;
        assert.deepEqual([...item.vector], [...initial.map((x) => Math.fround(x + 0.5))]);
        assert.equal(item.interactionCount, 3);
        assert.equal(item.firstSeenMs, T0 - 100);
        assert.equal(item.lastSeenMs, T0);
        const longLog = logAddEvent(logAddEvent(EMPTY_LOG_SUM, T0, 30 * DAY), T0 - 100, 30 * DAY, 2);
        assertClose(item.popularity.longLog, longLog, 1e-12);
        assertClose(decayedCount(item.popularity.shortLog, T0, DAY), 1 + 2 * 2 ** (-100 / DAY), 1e-9);
      }));

    it('two deltas for the same item in one call both apply', () =>
      withStore(async (store) => {
        await store.applyItemDeltas([
          {
            itemId: 'i',
            initialVector: filled(1),
            vectorDelta: filled(0.25),
            interactions: 1,
            atMs: T0,
            cooccurrence: new Map([['j', 1]]),
          },
          {
            itemId: 'i',
            initialVector: filled(5),
            vectorDelta: filled(0.5),
            interactions: 1,
            atMs: T0 + 1,
            cooccurrence: new Map([['j', 2]]),
          },
        ]);
        const item = (await store.getItems(['i'])).get('i')!;
        assert.deepEqual([...item.vector], [...filled(1.75)]);
        assert.equal(item.interactionCount, 2);
        assert.deepEqual(byCount(item.cooccurrence), [['j', 3]]);
        assert.equal(item.lastSeenMs, T0 + 1);
      }));

    it('50 concurrent applyItemDeltas calls on one item lose nothing', () =>
      withStore(async (store) => {
        const calls = Array.from({ length: 50 }, (_, i) =>
          store.applyItemDeltas([
            {
              itemId: 'hot',
              initialVector: filled(1),
              vectorDelta: filled(0.25),
              interactions: 1,
              atMs: T0 + i,
              seenBy: { id: `u${i}`, atMs: T0 + i },
              cooccurrence: new Map([['other', 1]]),
            },
          ]),
        );
        await Promise.all(calls);
        const item = (await store.getItems(['hot'])).get('hot')!;
        assert.equal(item.interactionCount, 50);
        assert.deepEqual([...item.vector], [...filled(1 + 50 * 0.25)]);
        assert.deepEqual(byCount(item.cooccurrence), [['other', 50]]);
        assert.deepEqual(
          item.recentUsers.map((r) => r.id),
          [49, 48, 47, 46].map((i) => `u${i}`),
        );
        assert.equal(item.firstSeenMs, T0);
        assert.equal(item.lastSeenMs, T0 + 49);
        let longLog = EMPTY_LOG_SUM;
        for (let i = 0; i < 50; i++) longLog = logAddEvent(longLog, T0 + i, 30 * DAY);
        assertClose(item.popularity.longLog, longLog, 1e-12);
      }));

    it('recentUsers and cooccurrence stay bounded, keeping the most recent and the largest', () =>
      withStore(async (store) => {
        const deltas: ItemDelta[] = [];
        for (let i = 0; i < 10; i++) {
          deltas.push({
            itemId: 'i',
            atMs: T0 + i,
            seenBy: { id: `u${i}`, atMs: T0 + i },
            cooccurrence: new Map([[`c${i}`, i + 1]]),
          });
        }
        await store.applyItemDeltas(deltas.slice(0, 5));
        await store.applyItemDeltas(deltas.slice(5));
        await store.applyItemDeltas([{ itemId: 'i', atMs: T0, cooccurrence: new Map([['c0', 100]]) }]);
        const item = (await store.getItems(['i'])).get('i')!;
        assert.deepEqual(
          item.recentUsers,
          [9, 8, 7, 6].map((i) => ({ id: `u${i}`, atMs: T0 + i })),
        );
        assert.equal(item.cooccurrence.size, 3);
        assert.deepEqual(
          byCount(item.cooccurrence),
          [
            ['c0', 100],
            ['c9', 10],
            ['c8', 9],
          ],
        );
      }));

    it('applyItemDeltas rejects a delta of the wrong dimension with BadInputError and applies none of the call', () =>
      withStore(async (store) => {
        await assert.rejects(
          store.applyItemDeltas([
            { itemId: 'ok', initialVector: filled(1), atMs: T0 },
            { itemId: 'bad', initialVector: new Float32Array(d + 1), atMs: T0 },
          ]),
          (err) => err instanceof BadInputError,
        );
        assert.equal((await store.getItems(['ok', 'bad'])).size, 0);
      }));

    it('searchItems returns the best inner products first, honouring k and exclude', () =>
      withStore(async (store) => {
        const vectors = new Map(Array.from({ length: 30 }, (_, i) => [`i${i}`, randomVector()] as const));
        await store.applyItemDeltas(
          [...vectors].map(([itemId, v]) => ({ itemId, initialVector: v, atMs: T0 })),
        );
        const query = randomVector();
        const ranked = bruteForce(vectors, query);

        const top = await store.searchItems(query, 5);
        assert.deepEqual(
          top.map((n) => n.id),
          ranked.slice(0, 5).map((n) => n.id),
        );
        top.forEach((n, i) => assertClose(n.score, ranked[i]!.score, 1e-4));

        const exclude = new Set([ranked[0]!.id, ranked[2]!.id, 'not-an-item']);
        const skipped = await store.searchItems(query, 4, exclude);
        assert.deepEqual(
          skipped.map((n) => n.id),
          ranked
            .filter((n) => !exclude.has(n.id))
            .slice(0, 4)
            .map((n) => n.id),
        );

        assert.equal((await store.searchItems(query, 100)).length, 30);
        assert.deepEqual(await store.searchItems(query, 0), []);
      }));

    it('searchItems sees vectors changed by deltas', () =>
      withStore(async (store) => {
        await store.applyItemDeltas([
          { itemId: 'a', initialVector: filled(1), atMs: T0 },
          { itemId: 'b', initialVector: filled(-1), atMs: T0 },
        ]);
        assert.equal((await store.searchItems(filled(1), 1))[0]?.id, 'a');
        await store.applyItemDeltas([
          { itemId: 'a', vectorDelta: filled(-2), atMs: T0 + 1 },
          { itemId: 'b', vectorDelta: filled(2), atMs: T0 + 1 },
        ]);
        assert.equal((await store.searchItems(filled(1), 1))[0]?.id, 'b');
      }));

    it('searchUsers returns the best inner products first, honouring k and exclude', () =>
      withStore(async (store) => {
        const vectors = new Map(Array.from({ length: 20 }, (_, i) => [`u${i}`, randomVector()] as const));
        await store.putUsers([...vectors].map(([id, v]) => user(id, v)));
        const query = randomVector();
        const ranked = bruteForce(vectors, query);
        const top = await store.searchUsers(query, 3, new Set([ranked[1]!.id]));
        assert.deepEqual(
          top.map((n) => n.id),
          [ranked[0]!.id, ranked[2]!.id, ranked[3]!.id],
        );
        assertClose(top[0]!.score, ranked[0]!.score, 1e-4);
      }));

    it('popularItems ranks by decayed long-window count and honours k', () =>
      withStore(async (store) => {
        const deltas: ItemDelta[] = [
          { itemId: 'old-many', initialVector: filled(0), interactions: 5, atMs: T0 - 120 * DAY },
          { itemId: 'recent-one', initialVector: filled(0), interactions: 1, atMs: T0 },
          { itemId: 'recent-two', initialVector: filled(0), interactions: 2, atMs: T0 - DAY },
          { itemId: 'never', initialVector: filled(0), atMs: T0, cooccurrence: new Map([['x', 1]]) },
        ];
        await store.applyItemDeltas(deltas);
        await store.putItemMetadata([{ itemId: 'catalogue-only', title: 'C', categories: [] }]);
        const nowMs = T0 + DAY;
        const expected = [
          ['recent-two', 2 * 2 ** (-2 / 30)],
          ['recent-one', 2 ** (-1 / 30)],
          ['old-many', 5 * 2 ** (-121 / 30)],
        ] as const;
        const all = await store.popularItems(10, nowMs);
        assert.deepEqual(
          all.map((n) => n.id),
          expected.map(([id]) => id),
        );
        all.forEach((n, i) => assertClose(n.score, expected[i]![1], 1e-9));
        assert.deepEqual(
          (await store.popularItems(2, nowMs)).map((n) => n.id),
          ['recent-two', 'recent-one'],
        );
        assert.deepEqual(await store.popularItems(0, nowMs), []);
      }));

    // The popular candidates and the popularity baseline read this ranking on every event, so it must be the
    // ranking as of the last write on every adapter. The embedded store once served a cached ranking refreshed
    // every 1000 deltas while Qdrant ordered live, and the same stream ranked differently on the two.
    it('popularItems reflects every write at once, several items raised per write included', () =>
      withStore(async (store) => {
        const longLog = new Map<string, number>();
        const write = (deltas: readonly (readonly [string, number, number])[]) => {
          for (const [itemId, interactions, atMs] of deltas) {
            longLog.set(itemId, logAddEvent(longLog.get(itemId) ?? EMPTY_LOG_SUM, atMs, opts.popularityLongHalfLifeMs, interactions));
          }
          return store.applyItemDeltas(
            deltas.map(([itemId, interactions, atMs]) => ({ itemId, initialVector: filled(0), interactions, atMs })),
          );
        };
        const ranking = () => [...longLog].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
        const ids = async (k: number, nowMs: number) => (await store.popularItems(k, nowMs)).map((n) => n.id);

        await write([['a', 6, T0], ['b', 4, T0], ['y', 3, T0], ['x', 1, T0]]);
        assert.deepEqual(await ids(4, T0), ['a', 'b', 'y', 'x']);
        // x passes b while y, raised in the same write, passes everything: x must not stop behind y's old place.
        await write([['x', 4, T0], ['y', 5, T0]]);
        assert.deepEqual(await ids(4, T0), ['y', 'a', 'x', 'b']);

        const local = createRng(7);
        const items = Array.from({ length: 10 }, (_, i) => `p${i}`);
        let at = T0;
        for (let call = 0; call < 30; call++) {
          const deltas: [string, number, number][] = [];
          for (let n = 1 + local.int(4); n > 0; n--) {
            at += 1 + local.int(6 * 3_600_000);
            // Skewed towards the first ids, so the head changes order as well as membership.
            deltas.push([items[Math.floor(items.length * local.next() ** 2)]!, 1 + local.int(2), at]);
          }
          await write(deltas);
          // The whole ranking: a write that raises several items must leave every one of them in its place.
          const expected = ranking();
          const got = await store.popularItems(expected.length, at);
          assert.deepEqual(
            got.map((n) => n.id),
            expected.map(([id]) => id),
            `after write ${call}`,
          );
          got.forEach((n, i) => assertClose(n.score, decayedCount(expected[i]![1], at, opts.popularityLongHalfLifeMs), 1e-9));
        }
      }));

    it('counts() counts users and items', () =>
      withStore(async (store) => {
        await store.putUsers([user('a'), user('b'), user('c')]);
        await store.applyItemDeltas([
          { itemId: 'x', initialVector: randomVector(), atMs: T0 },
          { itemId: 'y', initialVector: randomVector(), atMs: T0 },
        ]);
        assert.deepEqual(await store.counts(), { users: 3, items: 2 });
      }));

    it('putItemMetadata sets title and categories without touching vectors or counts', () =>
      withStore(async (store) => {
        const v = randomVector();
        await store.applyItemDeltas([
          {
            itemId: 'i',
            initialVector: v,
            interactions: 3,
            atMs: T0,
            seenBy: { id: 'u', atMs: T0 },
            cooccurrence: new Map([['j', 2]]),
          },
        ]);
        const before = (await store.getItems(['i'])).get('i')!;
        await store.putItemMetadata([{ itemId: 'i', title: 'Dune', categories: ['books', 'sci-fi'] }]);
        const after = (await store.getItems(['i'])).get('i')!;
        assert.equal(after.title, 'Dune');
        assert.deepEqual(after.categories, ['books', 'sci-fi']);
        assertSameCollaborativeState(after, before);

        await store.applyItemDeltas([{ itemId: 'i', interactions: 1, atMs: T0 + 1 }]);
        const again = (await store.getItems(['i'])).get('i')!;
        assert.equal(again.title, 'Dune', 'a later delta keeps the title');
        assert.equal(again.interactionCount, 4);
      }));

    it('metadata may come first: the item exists unseen, and its first delta still sets initialVector', () =>
      withStore(async (store) => {
        await store.putItemMetadata([{ itemId: 'new', title: 'T', categories: ['c'] }]);
        const unseen = (await store.getItems(['new'])).get('new')!;
        assert.equal(unseen.title, 'T');
        assert.equal(unseen.interactionCount, 0);
        assert.ok(unseen.firstSeenMs > unseen.lastSeenMs, 'unseen: firstSeenMs > lastSeenMs');
        const v = randomVector();
        await store.applyItemDeltas([{ itemId: 'new', initialVector: v, interactions: 1, atMs: T0 }]);
        const seen = (await store.getItems(['new'])).get('new')!;
        assert.deepEqual([...seen.vector], [...v]);
        assert.equal(seen.title, 'T');
        assert.equal(seen.firstSeenMs, T0);
        assert.equal(seen.lastSeenMs, T0);
      }));

    it('flush and close are idempotent', () =>
      withStore(async (store) => {
        await store.putUsers([user('u')]);
        await store.flush();
        await store.flush();
        await store.close();
        await store.close();
      }));
  });
}

function bruteForce(
  vectors: ReadonlyMap<string, Float32Array>,
  query: Float32Array,
): { id: string; score: number }[] {
  return [...vectors]
    .map(([id, v]) => ({ id, score: v.reduce((s, x, i) => s + x * query[i]!, 0) }))
    .sort((a, b) => b.score - a.score);
}

function assertSameCollaborativeState(a: ItemProfile, b: ItemProfile): void {
  assert.deepEqual([...a.vector], [...b.vector]);
  assert.equal(a.interactionCount, b.interactionCount);
  assert.deepEqual(a.recentUsers, b.recentUsers);
  assert.deepEqual(byCount(a.cooccurrence), byCount(b.cooccurrence));
  assert.equal(a.popularity.longLog, b.popularity.longLog);
  assert.equal(a.popularity.shortLog, b.popularity.shortLog);
  assert.equal(a.firstSeenMs, b.firstSeenMs);
  assert.equal(a.lastSeenMs, b.lastSeenMs);
}

function assertClose(actual: number, expected: number, relative: number): void {
  assert.ok(
    Math.abs(actual - expected) <= relative * Math.max(1, Math.abs(expected)),
    `expected ≈ ${expected}, got ${actual}`,
  );
}


/** Co-occurrence entries largest first, ties by id: the stores promise which entries, not their order. */
function byCount(counts: ReadonlyMap<string, number>): [string, number][] {
  return [...counts].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}
