import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createRng } from '../../../src/data/random.ts';
import { bprStep } from '../../../src/stages/embeddings/bpr.ts';
import { NegativeSampler } from '../../../src/stages/embeddings/index.ts';
import { dot } from '../../../src/stages/embeddings/vectors.ts';
import { bloomHas } from '../../../src/util/bloom.ts';
import { interaction, learnOne, learnPairs, smallEngine, T0 } from '../fixtures.ts';

const nonZero = (v: Float32Array): boolean => v.some((x) => x !== 0);

describe('CollaborativeLearner', () => {
  it('learns a new user and a new item from their first event', async () => {
    const engine = await smallEngine();
    const event = interaction('u1', 'i1', T0);
    const { profile, item: learned } = await learnOne(engine, event);
    assert.equal(profile.userId, 'u1');
    assert.equal(profile.interactionCount, 1);
    assert.deepEqual(profile.recentItems, [{ id: 'i1', atMs: T0 }]);
    assert.equal(profile.firstSeenMs, T0);
    assert.equal(profile.lastSeenMs, T0);
    assert.equal(profile.vector.length, 8);
    assert.ok(nonZero(profile.vector) && profile.vector.every(Number.isFinite), 'a random initial vector');
    const item = learned!;
    assert.equal(item.interactionCount, 1);
    assert.deepEqual(item.recentUsers, [{ id: 'u1', atMs: T0 }]);
    assert.ok(nonZero(item.vector));
    // Committed: the store has both, usable by the next batch.
    const users = await engine.store.getUsers(['u1']);
    const items = await engine.store.getItems(['i1']);
    assert.equal(users.get('u1')?.interactionCount, 1);
    assert.equal(items.get('i1')?.interactionCount, 1);
    assert.deepEqual((await engine.store.searchItems(profile.vector, 5)).map((n) => n.id), ['i1']);
  });

  it('gives an item known only from the catalogue a random vector at its first event, as a new item gets', async () => {
    const engine = await smallEngine();
    await engine.store.putItemMetadata([{ itemId: 'i1', title: 'Known from the catalogue', categories: ['A'] }]);
    const { item } = await learnOne(engine, interaction('u1', 'i1', T0));
    assert.ok(nonZero(item!.vector), 'the item vector is not the zero vector');
    const stored = (await engine.store.getItems(['i1'])).get('i1')!;
    assert.ok(nonZero(stored.vector));
    assert.equal(stored.title, 'Known from the catalogue', 'the catalogue data survives');
    assert.deepEqual(stored.categories, ['A']);
  });

  it('keeps a bounded history, most recent first, moving a re-consumed item to the front', async () => {
    const engine = await smallEngine({ store: { userHistoryLength: 3 } });
    await learnPairs(engine, [['u', 'a'], ['u', 'b'], ['u', 'c'], ['u', 'd']]);
    let user = (await engine.store.getUsers(['u'])).get('u')!;
    assert.deepEqual(user.recentItems.map((r) => r.id), ['d', 'c', 'b']);
    assert.equal(user.interactionCount, 4);
    await learnPairs(engine, [['u', 'c']], T0 + 10_000);
    user = (await engine.store.getUsers(['u'])).get('u')!;
    assert.deepEqual(user.recentItems.map((r) => r.id), ['c', 'd', 'b']);
    assert.equal(user.recentItems[0]!.atMs, T0 + 11_000, 'with the new time');
    assert.equal(user.interactionCount, 5);
  });

  it('keeps the history without duplicates and within its bound (property)', async () => {
    const engine = await smallEngine({ store: { userHistoryLength: 4 } });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { minLength: 1, maxLength: 15 }), async (items) => {
        const userId = `p${Math.random()}`;
        let t = T0;
        for (const i of items) await learnOne(engine, interaction(userId, i, (t += 1_000)));
        const user = (await engine.store.getUsers([userId])).get(userId)!;
        const ids = user.recentItems.map((r) => r.id);
        const expected: string[] = [];
        for (const i of [...items].reverse()) if (!expected.includes(i)) expected.push(i);
        assert.deepEqual(ids, expected.slice(0, 4));
      }),
      { numRuns: 40 },
    );
  });

  it('adds every consumed item to the consumed filter, also those that fell out of the history', async () => {
    const engine = await smallEngine({ store: { userHistoryLength: 2 } });
    const items = ['a', 'b', 'c', 'd', 'e'];
    await learnPairs(engine, items.map((i) => ['u', i] as const));
    const user = (await engine.store.getUsers(['u'])).get('u')!;
    assert.equal(user.recentItems.length, 2);
    assert.equal(user.consumed.length, 1_024);
    for (const i of items) assert.ok(bloomHas(user.consumed, i), i);
    assert.ok(!bloomHas(user.consumed, 'never-seen'));
  });

  it('links the new item with the previous `cooccurrenceWindow` items, both ways', async () => {
    const engine = await smallEngine({ store: { cooccurrenceWindow: 2 } });
    await learnPairs(engine, [['u', 'a'], ['u', 'b'], ['u', 'c'], ['u', 'd']]);
    const items = await engine.store.getItems(['a', 'b', 'c', 'd']);
    const cooc = (id: string): Record<string, number> => Object.fromEntries(items.get(id)!.cooccurrence);
    assert.deepEqual(cooc('d'), { c: 1, b: 1 }, 'd with the two previous items, not a');
    assert.deepEqual(cooc('a'), { b: 1, c: 1 }, 'a was linked by b and c, but is outside d\'s window');
    assert.deepEqual(cooc('b'), { a: 1, c: 1, d: 1 });
    assert.deepEqual(cooc('c'), { a: 1, b: 1, d: 1 });
  });

  it('counts repeated co-occurrence and never links an item with itself', async () => {
    const engine = await smallEngine({ store: { cooccurrenceWindow: 3 } });
    await learnPairs(engine, [['u1', 'x'], ['u1', 'y'], ['u2', 'x'], ['u2', 'y'], ['u2', 'y']]);
    const items = await engine.store.getItems(['x', 'y']);
    assert.equal(items.get('y')!.cooccurrence.get('x'), 3, 'y→x from u1 once and from u2 twice (the re-view of y)');
    assert.equal(items.get('x')!.cooccurrence.get('y'), 3);
    assert.equal(items.get('y')!.cooccurrence.has('y'), false);
    assert.equal(items.get('x')!.cooccurrence.has('x'), false);
  });

  it('raises the positive-minus-negative margin with repeated BPR steps', async () => {
    const engine = await smallEngine({ embeddings: { learningRate: 0.1 } });
    await learnPairs(engine, [['other', 'pos'], ['other', 'neg']]);
    const margin = async (): Promise<number> => {
      const u = (await engine.store.getUsers(['u'])).get('u')!;
      const items = await engine.store.getItems(['pos', 'neg']);
      return dot(u.vector, items.get('pos')!.vector) - dot(u.vector, items.get('neg')!.vector);
    };
    await learnOne(engine, interaction('u', 'pos', T0 + 10_000), ['neg']);
    const first = await margin();
    let previous = first;
    for (let k = 1; k <= 30; k++) {
      await learnOne(engine, interaction('u', 'pos', T0 + 10_000 + k), ['neg']);
      const m = await margin();
      assert.ok(m > previous - 1e-6, `step ${k}: ${m} after ${previous}`);
      previous = m;
    }
    assert.ok(previous > first + 0.05, `margin grew from ${first} to ${previous}`);
  });
});

describe('bprStep', () => {
  it('returns the margin before the step and increases it (property over random vectors)', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const rng = createRng(seed);
        const vec = (): Float32Array => Float32Array.from({ length: 6 }, () => rng.normal() * 0.3);
        const u = vec();
        const i = vec();
        const j = vec();
        const before = dot(u, i) - dot(u, j);
        const di = new Float32Array(6);
        const dj = new Float32Array(6);
        const reported = bprStep(u, i, j, di, dj, 0.05, 0);
        assert.ok(Math.abs(reported - before) < 1e-6);
        for (let d = 0; d < 6; d++) {
          i[d]! += di[d]!;
          j[d]! += dj[d]!;
        }
        assert.ok(dot(u, i) - dot(u, j) > before, 'margin increased');
      }),
      { numRuns: 200 },
    );
  });
});

describe('NegativeSampler', () => {
  const random = (seed: number) => createRng(seed);

  it('returns nothing before anything was observed', () => {
    assert.deepEqual(new NegativeSampler(10, random(1)).sample(4, 'x'), []);
  });

  it('never returns the avoided item and returns at most `count` (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom<string>('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 50 }), fc.integer({ min: 0, max: 10 }), fc.integer(), (observed, count, seed) => {
        const sampler = new NegativeSampler(20, random(seed));
        for (const id of observed) sampler.observe(id);
        const out = sampler.sample(count, 'a');
        assert.ok(out.length <= count);
        assert.ok(!out.includes('a'));
        for (const id of out) assert.ok(observed.includes(id));
      }),
    );
  });

  it('gives up (bounded tries) when only the avoided item was seen', () => {
    const sampler = new NegativeSampler(5, random(2));
    for (let k = 0; k < 5; k++) sampler.observe('only');
    assert.deepEqual(sampler.sample(1_000, 'only'), []);
  });

  it('forgets items older than its capacity (bounded memory)', () => {
    const sampler = new NegativeSampler(50, random(3));
    for (let k = 0; k < 50; k++) sampler.observe('old');
    for (let k = 0; k < 50; k++) sampler.observe(`new${k % 5}`);
    const drawn = new Set(Array.from({ length: 50 }, () => sampler.sample(4, 'none')).flat());
    assert.ok(!drawn.has('old'));
    assert.equal(drawn.size, 5);
  });

  it('draws in proportion to recent popularity', () => {
    const sampler = new NegativeSampler(1_000, random(4));
    for (let k = 0; k < 1_000; k++) sampler.observe(k % 10 < 8 ? 'hot' : 'cold');
    const draws = Array.from({ length: 500 }, () => sampler.sample(4, 'none')).flat();
    const hot = draws.filter((d) => d === 'hot').length / draws.length;
    assert.ok(hot > 0.7 && hot < 0.9, `hot share ${hot}`);
  });
});

