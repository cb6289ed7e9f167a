/**
 * The embedded store's typed state (`src/store/embedded/state/`): a rolled-back batch leaves the state exactly
 * as it found it, and learning in place gives the same profiles as the profile path (`StoreView` + item
 * deltas) on the same events.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { createRng } from '../../src/data/random.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { buildEngine, type Engine } from '../../src/main.ts';
import { learnEventInto } from '../../src/stages/embeddings/index.ts';
import { StoreView } from '../../src/stages/state/store-view.ts';
import { EmbeddedStore } from '../../src/store/embedded/index.ts';
import type { ItemProfile, UserProfile, VectorStore } from '../../src/store/port.ts';

const T0 = Date.UTC(2025, 0, 1);

/**
 * A small store; by default its co-occurrence lists overflow and get cut often (limit 4). The two learning
 * paths cut at different moments (a delta adds a window of keys at once, the typed state one by one), both
 * within the contract's 1.25 × limit, so the parity test keeps the lists below their limit.
 */
function engine(cooccurrenceLimit = 4, maxUsersInMemory = 0): Engine & { store: EmbeddedStore } {
  const config = loadConfig({
    overrides: {
      store: {
        dimension: 8,
        cooccurrenceLimit,
        cooccurrenceWindow: 3,
        userHistoryLength: 6,
        itemAudienceLength: 5,
        maxUsersInMemory,
        // A graph from 50 vectors on, refreshed inline: the retirement test searches through it.
        embedded: { indexBuild: 'inline', exactSearchBelow: 50, rebuildDirtyMin: 20 },
      },
    },
  });
  return buildEngine(config) as Engine & { store: EmbeddedStore };
}

/** Seeded events over `users` × `items`, one second apart. */
function events(seed: string, n: number, users: number, items: number, start = T0): Interaction[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, k) => ({
    eventId: `${seed}-${k}`,
    userId: `u${rng.int(users)}`,
    itemId: `i${rng.int(items)}`,
    type: 'view' as const,
    value: null,
    timestampMs: start + k * 1_000,
    context: {},
  }));
}

/** Learns `batch` through a live batch, as the processor does (the sampler's ring included); commits unless `rollback`. */
async function learnLive(e: Engine, batch: readonly Interaction[], rollback = false): Promise<void> {
  const live = await e.store.openBatch!();
  e.negativeSlots.begin();
  const negatives = new Int32Array(e.config.embeddings.negatives);
  for (const event of batch) learnEventInto(e.learner, e.negativeSlots, live.state, event, negatives);
  if (rollback) {
    live.rollback();
    e.negativeSlots.rollback();
  } else {
    await live.commit();
    e.negativeSlots.commit();
  }
}

/** Every profile the store holds, by id. */
async function everything(store: VectorStore, userIds: Iterable<string>, itemIds: Iterable<string>): Promise<{ users: Map<string, UserProfile>; items: Map<string, ItemProfile> }> {
  return { users: await store.getUsers([...userIds]), items: await store.getItems([...itemIds]) };
}

const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, k) => `${prefix}${k}`);

describe('typed collaborative state', () => {
  it('a rolled-back batch leaves every profile, count, id and popularity as before, new users and items included', async () => {
    const e = engine();
    await learnLive(e, events('before', 400, 30, 40));
    const before = await everything(e.store, ids('u', 60), ids('i', 80));
    const countsBefore = await e.store.counts();
    const popularBefore = await e.store.popularItems(20, T0 + 10_000_000);
    // Wider id ranges: the batch creates users and items, and overflows co-occurrence lists (limit 4).
    await learnLive(e, events('undone', 300, 60, 80, T0 + 500_000), true);
    const after = await everything(e.store, ids('u', 60), ids('i', 80));
    assert.deepEqual(await e.store.counts(), countsBefore);
    assert.deepEqual([...after.users.keys()].sort(), [...before.users.keys()].sort());
    assert.deepEqual([...after.items.keys()].sort(), [...before.items.keys()].sort());
    for (const [id, want] of before.users) assert.deepEqual(after.users.get(id), want, `user ${id}`);
    for (const [id, want] of before.items) {
      const got = after.items.get(id)!;
      assert.deepEqual({ ...got, cooccurrence: new Map([...got.cooccurrence].sort()) }, { ...want, cooccurrence: new Map([...want.cooccurrence].sort()) }, `item ${id}`);
    }
    assert.deepEqual(await e.store.popularItems(20, T0 + 10_000_000), popularBefore);
  });

  it('the same batch learned after a rollback gives the state of learning it once', async () => {
    const once = engine();
    const twice = engine();
    const first = events('first', 200, 20, 30);
    const second = events('second', 200, 25, 35, T0 + 300_000);
    await learnLive(once, first);
    await learnLive(once, second);
    await learnLive(twice, first);
    await learnLive(twice, second, true);
    await learnLive(twice, second);
    const a = await everything(once.store, ids('u', 25), ids('i', 35));
    const b = await everything(twice.store, ids('u', 25), ids('i', 35));
    assert.deepEqual(b.users, a.users);
    for (const [id, want] of a.items) {
      const got = b.items.get(id)!;
      assert.deepEqual({ ...got, cooccurrence: new Map([...got.cooccurrence].sort()) }, { ...want, cooccurrence: new Map([...want.cooccurrence].sort()) }, `item ${id}`);
    }
  });

  it('learning in place gives the profile path’s histories, counts, audiences, co-occurrence and popularity', async () => {
    const live = engine(200);
    const viaView = engine(200);
    // The same store class without openBatch: the processor's path for stores that have no live batch.
    const plain: VectorStore = Object.assign(Object.create(Object.getPrototypeOf(viaView.store) as object), viaView.store, { openBatch: undefined });
    const stream = events('parity', 300, 20, 25);
    await learnLive(live, stream);
    for (const event of stream) {
      const view = new StoreView(plain, viaView.mergeItem);
      await view.load([event.userId], []);
      // No negatives on either side: vectors aside, negatives change nothing, and the paths draw them differently.
      await view.load([], viaView.learner.itemsToLoad(view.user(event.userId), event, []));
      viaView.learner.learn(view, event, []);
      await view.commit();
    }
    const a = await everything(live.store, ids('u', 20), ids('i', 25));
    const b = await everything(viaView.store, ids('u', 20), ids('i', 25));
    assert.equal(a.users.size, b.users.size);
    for (const [id, want] of b.users) {
      const { vector: _a, ...got } = a.users.get(id)!;
      const { vector: _b, ...expected } = want;
      assert.deepEqual(got, expected, `user ${id}`);
    }
    for (const [id, want] of b.items) {
      const { vector: _a, cooccurrence: ca, ...got } = a.items.get(id)!;
      const { vector: _b, cooccurrence: cb, ...expected } = want;
      assert.deepEqual(got, expected, `item ${id}`);
      assert.deepEqual(new Map([...ca].sort()), new Map([...cb].sort()), `item ${id} co-occurrence`);
    }
  });

  it('retires the least recently seen users past maxUsersInMemory: gone from profiles, search and audiences; slots reused', async () => {
    const e = engine(200, 20);
    const stream = events('open-world', 600, 120, 40);
    for (let k = 0; k < stream.length; k += 50) await learnLive(e, stream.slice(k, k + 50));
    const live = (await e.store.counts()).users;
    assert.ok(live <= 21, `${live} users held, bound 20 (+5%)`);
    const held = await e.store.getUsers(ids('u', 120));
    assert.equal(held.size, live);
    // The slots stay as many as the bound needs, not one per user ever seen.
    assert.ok(e.store.state.users.extent <= 21 + 50, `${e.store.state.users.extent} user slots for ${live} users`);
    // The users held are the most recently seen ones.
    const lastSeen = new Map<string, number>();
    for (const ev of stream) lastSeen.set(ev.userId, ev.timestampMs);
    const oldestHeld = Math.min(...[...held.values()].map((u) => u.lastSeenMs));
    for (const [id, at] of lastSeen) if (at > oldestHeld + 50_000) assert.ok(held.has(id), `${id}, seen at ${at}, should be held`);
    for (const [, user] of held) {
      for (const n of await e.store.searchUsers(user.vector, 10)) assert.ok(held.has(n.id), `search returned retired ${n.id}`);
    }
    for (const [id, item] of await e.store.getItems(ids('i', 40))) {
      for (const r of item.recentUsers) {
        assert.ok(held.has(r.id), `item ${id} audience names retired ${r.id}`);
        // A reused slot must not inherit its previous holder's audience entries: the user saw the item then.
        assert.ok(stream.some((ev) => ev.userId === r.id && ev.itemId === id && ev.timestampMs === r.atMs), `item ${id}: ${r.id} at ${r.atMs}`);
      }
    }
  });
});
