import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { serialize } from 'node:v8';
import { parseConfig } from '../../src/config/load.ts';
import { createRng } from '../../src/data/random.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { FatalError } from '../../src/errors/index.ts';
import { CollaborativeLearner, NegativeSampler } from '../../src/stages/embeddings/index.ts';
import { EmbeddedStore, type EmbeddedStoreOptions } from '../../src/store/embedded/index.ts';
import type { CollaborativeState } from '../../src/store/embedded/state/collaborative-state.ts';

/**
 * The embedded store's snapshot (format 2, `state/snapshot.ts`): a restore gives back the state it was taken
 * of, column for column, and learning on from it gives the same state as learning on from the original.
 */

const dir = mkdtempSync(join(tmpdir(), 'starstream-snapshot-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const file = (): string => join(dir, `snapshot-${files++}.bin`);

function storeOptions(path: string | undefined, overrides: Record<string, unknown> = {}): EmbeddedStoreOptions {
  const s = parseConfig({ store: { dimension: 8, userHistoryLength: 6, itemAudienceLength: 5, cooccurrenceLimit: 8, consumedFilterBytes: 32, ...overrides } }).store;
  return { ...s, ...s.embedded, indexBuild: 'inline', path };
}

function learnerFor(store: EmbeddedStore, seed: string): CollaborativeLearner {
  const s = store.state.options;
  return new CollaborativeLearner(
    { dimension: s.dimension, learningRate: 0.05, regularization: 0.002, initScale: 0.1, userHistoryLength: s.userHistoryLength, cooccurrenceWindow: 3, consumedFilterBytes: s.consumedFilterBytes },
    createRng(seed),
  );
}

/** Learns `events` in one live batch, with negatives drawn as the pipeline draws them; `fail` rolls it back. */
async function learn(store: EmbeddedStore, learner: CollaborativeLearner, sampler: NegativeSampler<number>, events: readonly Interaction[], fail = false): Promise<void> {
  const batch = await store.openBatch();
  const negatives = new Int32Array(4);
  for (const event of events) {
    const item = batch.state.item(event.itemId);
    const drawn = sampler.sampleInto(negatives, negatives.length, item);
    sampler.observe(item);
    learner.learnInto(batch.state, event, item, negatives, drawn);
  }
  if (fail) batch.rollback();
  else await batch.commit();
}

/** A store with learned users and items, catalogue-only items, item deltas, and slots freed by a rollback. */
async function populated(path: string | undefined): Promise<{ store: EmbeddedStore; sampler: NegativeSampler<number>; rest: Interaction[] }> {
  const store = new EmbeddedStore(storeOptions(path));
  const learner = learnerFor(store, 'learn');
  const sampler = new NegativeSampler<number>(300, createRng('negatives'));
  const events = [...generateStream({ events: 3_000, users: 120, items: 200, seed: 5 })];
  const head = events.slice(0, 2_000);
  for (let k = 0; k < head.length; k += 250) await learn(store, learner, sampler, head.slice(k, k + 250));
  // New users and items only in a batch that fails: their slots are freed and go to the free list.
  const ghosts = Array.from({ length: 5 }, (_, k): Interaction => ({ ...head[k]!, eventId: `ghost${k}`, userId: `ghost-user-${k}`, itemId: `ghost-item-${k}` }));
  await learn(store, learner, sampler, ghosts, true);
  await store.putItemMetadata([
    { itemId: 'catalogue-only', title: 'Never Seen (2026)', categories: ['Drama', 'Ünïcödé'] },
    { itemId: head[0]!.itemId, title: 'A "quoted" title', categories: [] },
  ]);
  await store.applyItemDeltas([{ itemId: 'delta-only', atMs: head[0]!.timestampMs, interactions: 2, vectorDelta: new Float32Array(8).fill(0.25), cooccurrence: new Map([[head[1]!.itemId, 3]]) }]);
  return { store, sampler, rest: events.slice(2_000) };
}

function liveIds(state: CollaborativeState, side: 'users' | 'items'): string[] {
  const table = state[side];
  const exists = side === 'users' ? state.userExists : state.itemExists;
  return [...table.liveSlots()].filter((s) => exists[s] === 1).map((s) => table.idOf(s)).sort();
}

/** Every column, id table and list of `b` equals `a`'s, and so does everything the port reads. */
async function assertSameState(a: EmbeddedStore, b: EmbeddedStore): Promise<void> {
  const sa = a.state;
  const sb = b.state;
  assert.deepEqual(await b.counts(), await a.counts());
  assert.deepEqual(sb.users.exportSlots(), sa.users.exportSlots(), 'user slots and free list');
  assert.deepEqual(sb.items.exportSlots(), sa.items.exportSlots(), 'item slots and free list');
  const nu = sa.users.extent;
  const ni = sa.items.extent;
  const o = sa.options;
  const d = sa.dimension;
  const cut = (name: keyof CollaborativeState, n: number): unknown => Array.from((sa[name] as Float64Array).subarray(0, n));
  const cutB = (name: keyof CollaborativeState, n: number): unknown => Array.from((sb[name] as Float64Array).subarray(0, n));
  const columns: [keyof CollaborativeState, number][] = [
    ['userExists', nu], ['userVec', nu * d], ['userCount', nu], ['userFirst', nu], ['userLast', nu],
    ['recentItems', nu * o.userHistoryLength], ['recentAt', nu * o.userHistoryLength], ['recentLen', nu], ['consumed', nu * o.consumedFilterBytes],
    ['itemExists', ni], ['itemVec', ni * d], ['itemCount', ni], ['shortLog', ni], ['longLog', ni], ['itemFirst', ni], ['itemLast', ni],
    ['audienceLen', ni], ['hashA', ni], ['hashB', ni],
  ];
  for (const [name, n] of columns) assert.deepEqual(cutB(name, n), cut(name, n), `column ${String(name)}`);
  // Audience rows beyond their length are never read: compare the used part.
  for (let i = 0; i < ni; i++) {
    const a0 = i * o.itemAudienceLength;
    const len = sa.audienceLen[i]!;
    assert.deepEqual(Array.from(sb.audienceUser.subarray(a0, a0 + len)), Array.from(sa.audienceUser.subarray(a0, a0 + len)));
    assert.deepEqual(Array.from(sb.audienceAt.subarray(a0, a0 + len)), Array.from(sa.audienceAt.subarray(a0, a0 + len)));
  }
  assert.deepEqual(sb.cooccurrence.exportLists(ni), sa.cooccurrence.exportLists(ni), 'co-occurrence lists, in order');
  assert.deepEqual(sb.titles.slice(0, ni), sa.titles.slice(0, ni));
  assert.deepEqual(sb.categories.slice(0, ni), sa.categories.slice(0, ni));

  const users = liveIds(sa, 'users');
  const items = liveIds(sa, 'items');
  assert.deepEqual(liveIds(sb, 'users'), users);
  assert.deepEqual(liveIds(sb, 'items'), items);
  assert.deepEqual(await b.getUsers(users), await a.getUsers(users), 'user profiles');
  assert.deepEqual(await b.getItems(items), await a.getItems(items), 'item profiles');
  const now = sa.itemLast.reduce((m, t) => (t > m && t < Number.MAX_SAFE_INTEGER ? t : m), 0);
  assert.deepEqual(await b.popularItems(20, now), await a.popularItems(20, now), 'popularity ranking');
  const query = sa.userVector(sa.users.slotOf(users[0]!));
  assert.deepEqual(await b.searchItems(query, 10), await a.searchItems(query, 10), 'vector search');
}

describe('embedded store snapshot (format 2)', () => {
  it('restores every column, id table, list and profile exactly, and the negative ring', async () => {
    const path = file();
    const { store, sampler } = await populated(path);
    const ring = sampler.snapshot();
    const written = await store.writeSnapshot(store.captureSnapshot({ meta: { note: 'meta survives' }, negatives: ring }));
    assert.equal(written.bytes, readFileSync(path).length);

    const restored = new EmbeddedStore(storeOptions(path));
    await restored.init();
    await assertSameState(store, restored);
    assert.equal(restored.restored?.format, 2);
    assert.deepEqual(restored.restored?.meta, { note: 'meta survives' });
    assert.deepEqual(restored.restored?.negatives, ring);
    await store.close();
    await restored.close();
  });

  it('learning on from a restored state gives exactly the state learning on from the original gives', async () => {
    const path = file();
    const { store, sampler, rest } = await populated(path);
    await store.writeSnapshot(store.captureSnapshot({ negatives: sampler.snapshot() }));
    const restored = new EmbeddedStore(storeOptions(path));
    await restored.init();
    const samplerB = new NegativeSampler<number>(300, createRng('negatives-on'));
    samplerB.restore(restored.restored!.negatives!);
    const samplerA = new NegativeSampler<number>(300, createRng('negatives-on'));
    samplerA.restore(sampler.snapshot());
    const learnerA = learnerFor(store, 'on');
    const learnerB = learnerFor(restored, 'on');
    for (let k = 0; k < rest.length; k += 200) {
      await learn(store, learnerA, samplerA, rest.slice(k, k + 200));
      await learn(restored, learnerB, samplerB, rest.slice(k, k + 200));
    }
    await assertSameState(store, restored);
    await store.close();
    await restored.close();
  });

  it('a plain flush() writes format 2; with a checkpointer in charge, flush() and close() leave the file alone', async () => {
    const path = file();
    const { store } = await populated(path);
    await store.flush();
    const first = readFileSync(path);
    assert.equal(first.subarray(0, 8).toString('latin1'), 'STARSNP2');
    store.handOverSnapshots();
    await store.applyItemDeltas([{ itemId: 'after-handover', atMs: 1, interactions: 1 }]);
    await store.close();
    assert.ok(readFileSync(path).equals(first), 'not written again');
  });

  it('carries a snapshot over to other history, audience and co-occurrence limits through profiles', async () => {
    const path = file();
    const { store } = await populated(path);
    await store.flush();
    const narrower = new EmbeddedStore(storeOptions(path, { userHistoryLength: 3, itemAudienceLength: 2, cooccurrenceLimit: 4 }));
    await narrower.init();
    assert.deepEqual(await narrower.counts(), await store.counts());
    const users = liveIds(store.state, 'users');
    const before = await store.getUsers(users);
    const after = await narrower.getUsers(users);
    for (const id of users) {
      assert.deepEqual(after.get(id)!.recentItems, before.get(id)!.recentItems.slice(0, 3));
      assert.equal(after.get(id)!.interactionCount, before.get(id)!.interactionCount);
      assert.deepEqual(after.get(id)!.vector, before.get(id)!.vector);
    }
    await store.close();
    await narrower.close();
  });

  it('still reads a format 1 snapshot (v8-serialized profiles)', async () => {
    const { store } = await populated(undefined);
    const s = store.state;
    const users = [...s.users.liveSlots()].filter((u) => s.userExists[u] === 1).map((u) => s.userProfile(u));
    const items = [...s.items.liveSlots()].filter((i) => s.itemExists[i] === 1).map((i) => s.itemProfile(i));
    const path = file();
    writeFileSync(path, serialize({ version: 1, dimension: 8, users, items }));
    const old = new EmbeddedStore(storeOptions(path));
    await old.init();
    assert.equal(old.restored?.format, 1);
    assert.deepEqual(await old.counts(), await store.counts());
    const ids = users.map((u) => u.userId);
    assert.deepEqual(await old.getUsers(ids), await store.getUsers(ids));
    // Format 1 went through `setItem`, which keeps a list as long as the live lists may be (1.25 times the limit).
    const itemIds = items.map((i) => i.itemId);
    const before = await store.getItems(itemIds);
    const sorted = (m: ReadonlyMap<string, number>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    assert.ok([...before.values()].some((i) => i.cooccurrence.size > 8), 'some list is past the limit of 8');
    for (const [id, item] of await old.getItems(itemIds)) {
      const { cooccurrence, ...rest } = item;
      const { cooccurrence: expected, ...expectedRest } = before.get(id)!;
      assert.deepEqual(rest, expectedRest);
      assert.deepEqual(sorted(cooccurrence), sorted(expected));
    }
    await store.close();
    await old.close();
  });

  it('refuses, naming the file, a torn or corrupted snapshot and one of another dimension', async () => {
    const path = file();
    const { store } = await populated(path);
    await store.flush();
    await store.close();
    const good = readFileSync(path);
    const refused = async (bytes: Buffer, code: string, options = storeOptions(path)): Promise<void> => {
      writeFileSync(path, bytes);
      await assert.rejects(new EmbeddedStore(options).init(), (err: unknown) => err instanceof FatalError && err.code === code && err.message.includes(path));
    };
    await refused(good.subarray(0, good.length - 100), 'SNAPSHOT_CORRUPT');
    const flipped = Buffer.from(good);
    flipped[flipped.length - 200]! ^= 0xff;
    await refused(flipped, 'SNAPSHOT_CORRUPT');
    await refused(Buffer.from('not a snapshot at all'), 'SNAPSHOT_CORRUPT');
    await refused(good, 'STORE_SCHEMA_MISMATCH', storeOptions(path, { dimension: 16 }));
    await refused(good, 'STORE_SCHEMA_MISMATCH', storeOptions(path, { popularityLongHalfLifeMs: 1_000 }));
  });
});
