import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Engine } from '../../../src/main.ts';
import { StoreView } from '../../../src/stages/state/store-view.ts';
import type { ItemDelta, UserProfile, VectorStore } from '../../../src/store/port.ts';
import { putItem, smallEngine, T0, userWith } from '../fixtures.ts';

type Call = [method: string, ids: readonly string[]];

/** The embedded store with every read and write recorded. */
function recording(store: VectorStore): { store: VectorStore; calls: Call[] } {
  const calls: Call[] = [];
  const wrapped: VectorStore = {
    kind: store.kind,
    init: () => store.init(),
    getUsers: (ids) => (calls.push(['getUsers', [...ids]]), store.getUsers(ids)),
    getItems: (ids) => (calls.push(['getItems', [...ids]]), store.getItems(ids)),
    putUsers: (users) => (calls.push(['putUsers', users.map((u) => u.userId)]), store.putUsers(users)),
    applyItemDeltas: (deltas) => (calls.push(['applyItemDeltas', deltas.map((d) => d.itemId)]), store.applyItemDeltas(deltas)),
    putItemMetadata: (items) => store.putItemMetadata(items),
    searchItems: (q, k, ex) => store.searchItems(q, k, ex),
    searchUsers: (q, k, ex) => store.searchUsers(q, k, ex),
    popularItems: (k, now) => store.popularItems(k, now),
    counts: () => store.counts(),
    flush: () => store.flush(),
    close: () => store.close(),
  };
  return { store: wrapped, calls };
}

async function setup(): Promise<{ engine: Engine; view: StoreView; calls: Call[]; user: UserProfile }> {
  const engine = await smallEngine();
  await putItem(engine, 'i1', { interactions: 3 });
  await putItem(engine, 'i2');
  const user = userWith(engine, 'u1', ['i1']);
  await engine.store.putUsers([user, userWith(engine, 'u2', ['i2'])]);
  const { store, calls } = recording(engine.store);
  return { engine, view: new StoreView(store, engine.mergeItem), calls, user };
}

describe('StoreView', () => {
  it('loads each profile once and caches it, absent items included', async () => {
    const { view, calls } = await setup();
    await view.load(['u1', 'u2', 'u1'], ['i1', 'nope']);
    assert.deepEqual(calls, [
      ['getUsers', ['u1', 'u2']],
      ['getItems', ['i1', 'nope']],
    ]);
    await view.load(['u1'], ['i1', 'nope']);
    assert.equal(calls.length, 2, 'nothing asked again');
    await view.load(['u2'], ['i1', 'i2']);
    assert.deepEqual(calls.slice(2), [['getItems', ['i2']]]);
    assert.equal((await view.usersById(['u1', 'u2'])).size, 2);
    assert.deepEqual([...(await view.itemsById(['i1', 'i2', 'nope'])).keys()], ['i1', 'i2']);
    assert.equal(calls.length, 3, 'served from the cache');
    assert.equal(view.user('u1')?.userId, 'u1');
    assert.equal(view.item('nope'), undefined);
  });

  it('throws when changing an item that was never loaded', async () => {
    const { view } = await setup();
    assert.throws(() => view.applyItemDelta({ itemId: 'i1', atMs: T0, interactions: 1 }), /i1.*not loaded/);
    await view.load([], ['i1']);
    assert.throws(() => view.applyItemDelta({ itemId: 'i2', atMs: T0, interactions: 1 }), /not loaded/);
  });

  it('shows deltas in the view at once and leaves the store untouched until commit', async () => {
    const { engine, view, calls } = await setup();
    await view.load([], ['i1', 'fresh']);
    const stored = (await engine.store.getItems(['i1'])).get('i1')!;
    view.applyItemDelta({ itemId: 'i1', atMs: T0, interactions: 2, seenBy: { id: 'u9', atMs: T0 } });
    view.applyItemDelta({ itemId: 'fresh', atMs: T0, interactions: 1, initialVector: new Float32Array(8).fill(1) });
    assert.equal(view.item('i1')!.interactionCount, 5);
    assert.deepEqual(view.item('i1')!.recentUsers[0], { id: 'u9', atMs: T0 });
    assert.equal(view.item('fresh')!.interactionCount, 1, 'an absent item is created by its delta');
    assert.deepEqual([...view.itemVector('fresh')!], new Array(8).fill(1));
    assert.equal(stored.interactionCount, 3, 'the stored profile object is not changed');
    assert.equal((await engine.store.getItems(['i1'])).get('i1')!.interactionCount, 3);
    assert.equal((await engine.store.getItems(['fresh'])).size, 0);
    assert.ok(!calls.some(([m]) => m === 'applyItemDeltas' || m === 'putUsers'));
  });

  it('tracks changed item vectors without copying profiles', async () => {
    const { view } = await setup();
    await view.load([], ['i1']);
    const before = Float32Array.from(view.itemVector('i1')!);
    const step = new Float32Array(8).fill(0.5);
    view.applyItemDelta({ itemId: 'i1', atMs: T0, vectorDelta: step });
    view.applyItemDelta({ itemId: 'i1', atMs: T0, vectorDelta: step });
    assert.deepEqual([...view.itemVector('i1')!], [...before].map((x) => Math.fround(Math.fround(x + 0.5) + 0.5)));
    assert.deepEqual([...view.item('i1')!.vector], [...view.itemVector('i1')!], 'the folded profile agrees');
  });

  it('commit writes the changed users and every delta, once', async () => {
    const { engine, view, calls, user } = await setup();
    await view.load(['u1', 'u2'], ['i1']);
    const changed: UserProfile = { ...user, interactionCount: 99 };
    view.putUser(changed);
    const deltas: ItemDelta[] = [
      { itemId: 'i1', atMs: T0, interactions: 1 },
      { itemId: 'i1', atMs: T0 + 1, interactions: 1, cooccurrence: new Map([['i2', 1]]) },
    ];
    for (const d of deltas) view.applyItemDelta(d);
    calls.length = 0;
    await view.commit();
    assert.deepEqual(
      [...calls].sort((a, b) => a[0].localeCompare(b[0])),
      [
        ['applyItemDeltas', ['i1', 'i1']],
        ['putUsers', ['u1']],
      ],
      'only the changed user, and the deltas in order',
    );
    assert.equal((await engine.store.getUsers(['u1'])).get('u1')!.interactionCount, 99);
    const i1 = (await engine.store.getItems(['i1'])).get('i1')!;
    assert.equal(i1.interactionCount, 5);
    assert.equal(i1.cooccurrence.get('i2'), 1);

    calls.length = 0;
    await view.commit();
    assert.deepEqual(calls, [], 'a second commit writes nothing');
  });

  it('reads the store again after a commit, so nothing is applied twice', async () => {
    const { engine, view, calls } = await setup();
    await view.load([], ['i1']);
    view.applyItemDelta({ itemId: 'i1', atMs: T0, interactions: 1 });
    await view.commit();
    calls.length = 0;
    await view.load([], ['i1']);
    assert.deepEqual(calls, [['getItems', ['i1']]]);
    assert.equal(view.item('i1')!.interactionCount, 4);
    view.applyItemDelta({ itemId: 'i1', atMs: T0, interactions: 1 });
    await view.commit();
    assert.equal((await engine.store.getItems(['i1'])).get('i1')!.interactionCount, 5);
  });

  it('passes searches and popularity through to the store', async () => {
    const { engine, view } = await setup();
    const popular = await view.popularItems(1, T0);
    assert.deepEqual(popular.map((n) => n.id), ['i1']);
    const q = new Float32Array(8).fill(1);
    assert.deepEqual(await view.searchUsers(q, 5), await engine.store.searchUsers(q, 5));
  });
});
