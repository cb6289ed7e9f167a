import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Engine } from '../../../src/main.ts';
import { coldUser } from '../../../src/pipeline/recommend.ts';
import { generateCandidates, RECENCY_DECAY, type CandidateOptions } from '../../../src/stages/candidates/index.ts';
import { bloomHas } from '../../../src/util/bloom.ts';
import { axis, newView, putItem, smallEngine, T0, userWith } from '../fixtures.ts';

const OPTIONS: CandidateOptions = {
  fromEmbedding: 1,
  fromCooccurrence: 10,
  fromPopular: 2,
  recentItemsForCooccurrence: 5,
  maxCandidates: 100,
  excludeConsumed: true,
};

/**
 * A small world: the user's history is r1 (latest), r2; `old` was consumed long ago (bloom only).
 * r1 co-occurs with c1 (3), c2 (1), r2 (5), old (10); r2 with c1 (2), c3 (4), r1 (5).
 * p1 and p2 are the most popular items; e1 points where the user's vector points.
 */
async function world(): Promise<{ engine: Engine; user: ReturnType<typeof userWith> }> {
  const engine = await smallEngine();
  await putItem(engine, 'r1', { cooccurrence: { c1: 3, c2: 1, r2: 5, old: 10 } });
  await putItem(engine, 'r2', { cooccurrence: { c1: 2, c3: 4, r1: 5 } });
  for (const id of ['c1', 'c2', 'c3', 'old']) await putItem(engine, id);
  await putItem(engine, 'p1', { interactions: 50 });
  await putItem(engine, 'p2', { interactions: 30 });
  await putItem(engine, 'e1', { vector: axis(engine, 0, 2) });
  const user = userWith(engine, 'u', ['r1', 'r2'], { vector: axis(engine, 0), consumedAlso: ['old'] });
  await engine.store.putUsers([user]);
  return { engine, user };
}

describe('generateCandidates', () => {
  it('excludes consumed items: the recent history and older items in the consumed filter', async () => {
    const { engine, user } = await world();
    const set = await generateCandidates(newView(engine), user, OPTIONS, T0);
    for (const id of ['r1', 'r2', 'old']) assert.ok(!set.itemIds.includes(id), `${id} is excluded`);
    for (const id of set.itemIds) assert.ok(!bloomHas(user.consumed, id), `${id} was not consumed`);
    assert.deepEqual([...set.itemIds].sort(), ['c1', 'c2', 'c3', 'e1', 'p1', 'p2']);
  });

  it('keeps consumed items with excludeConsumed = false', async () => {
    const { engine, user } = await world();
    const set = await generateCandidates(newView(engine), user, { ...OPTIONS, excludeConsumed: false }, T0);
    assert.ok(set.itemIds.includes('r2'), 'r2 co-occurs with r1');
    assert.ok(set.itemIds.includes('old'));
  });

  it('records every source an item came from', async () => {
    const { engine, user } = await world();
    await putItem(engine, 'c1', { interactions: 100 });
    const set = await generateCandidates(newView(engine), user, OPTIONS, T0);
    assert.deepEqual(set.sources.get('c1'), ['cooccurrence', 'popular']);
    assert.deepEqual(set.sources.get('c3'), ['cooccurrence']);
    assert.deepEqual(set.sources.get('e1'), ['embedding']);
    assert.deepEqual(set.sources.get('p1'), ['popular']);
    assert.equal(set.sources.has('p2'), false, 'fromPopular = 2 and c1, p1 are the top two');
    assert.equal(set.sources.size, set.itemIds.length);
  });

  it('sums co-occurrence over the recent items and weights the most recent one highest', async () => {
    const { engine, user } = await world();
    const set = await generateCandidates(newView(engine), user, OPTIONS, T0);
    const c1 = set.cooccurrence.get('c1')!;
    assert.equal(c1.total, 5);
    assert.equal(c1.items, 2);
    assert.ok(Math.abs(c1.recencyWeighted - (3 + 2 * RECENCY_DECAY)) < 1e-9, `${c1.recencyWeighted}`);
    assert.equal(c1.strongestWith, 'r1');
    assert.equal(c1.strongestCount, 3);
    const c3 = set.cooccurrence.get('c3')!;
    assert.equal(c3.total, 4);
    assert.ok(Math.abs(c3.recencyWeighted - 4 * RECENCY_DECAY) < 1e-9);
    assert.equal(c3.strongestWith, 'r2');
    // Co-occurrence candidates come first, strongest first.
    assert.deepEqual(set.itemIds.slice(0, 3), ['c1', 'c3', 'c2']);
    assert.deepEqual(set.recentItems.map((i) => i.itemId), ['r1', 'r2']);
  });

  it('only seeds co-occurrence from the `recentItemsForCooccurrence` most recent items', async () => {
    const { engine, user } = await world();
    const set = await generateCandidates(newView(engine), user, { ...OPTIONS, recentItemsForCooccurrence: 1 }, T0);
    assert.equal(set.cooccurrence.get('c3'), undefined, 'c3 co-occurs only with r2');
    assert.equal(set.cooccurrence.get('c1')?.total, 3);
  });

  it('respects maxCandidates and the per-source limits', async () => {
    const { engine, user } = await world();
    const two = await generateCandidates(newView(engine), user, { ...OPTIONS, maxCandidates: 2 }, T0);
    assert.deepEqual(two.itemIds, ['c1', 'c3']);
    const oneEach = await generateCandidates(newView(engine), user, { ...OPTIONS, fromCooccurrence: 1, fromPopular: 1 }, T0);
    assert.deepEqual(oneEach.itemIds, ['c1', 'e1', 'p1']);
    const none = await generateCandidates(newView(engine), user, { ...OPTIONS, fromCooccurrence: 0, fromEmbedding: 0, fromPopular: 0 }, T0);
    assert.deepEqual(none.itemIds, []);
  });

  it('gives a cold user the popular items, most popular first', async () => {
    const { engine } = await world();
    await putItem(engine, 'p3', { interactions: 10 });
    const cold = coldUser('newcomer', engine.config.store.dimension, engine.config.store.consumedFilterBytes);
    const set = await generateCandidates(newView(engine), cold, { ...OPTIONS, fromPopular: 3 }, T0);
    assert.deepEqual(set.itemIds, ['p1', 'p2', 'p3']);
    for (const id of set.itemIds) assert.deepEqual(set.sources.get(id), ['popular']);
    assert.deepEqual(set.cooccurrence.strongest(10, () => false), []);
    assert.deepEqual(set.recentItems, []);
  });
});
