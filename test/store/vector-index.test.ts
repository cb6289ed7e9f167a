import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { createRng } from '../../src/data/random.ts';
import { createEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.ts';
import type { GraphBuilds } from '../../src/store/embedded/graph-builds.ts';
import { VectorIndex, type VectorIndexOptions } from '../../src/store/embedded/vector-index.ts';
import type { Neighbour } from '../../src/store/port.ts';

/**
 * The embedded vector index: every committed vector is searchable from its write, placeholders never are,
 * and results match exact search. Small collections here (exactSearchBelow lowered so the graph exists); the
 * 100k recall run is in `vector-index-recall.test.ts`.
 */

const DIM = 8;
const T0 = 1_760_000_000_000;

function indexOptions(overrides: Partial<VectorIndexOptions> = {}): VectorIndexOptions {
  return {
    dimension: DIM,
    exactSearchBelow: 200,
    hnswM: 16,
    hnswEfConstruction: 64,
    hnswEfSearch: 64,
    rebuildDirtyFraction: 0.05,
    rebuildDirtyMin: 50,
    reindexDrift: 0.3,
    indexBuild: 'inline',
    ...overrides,
  };
}

function randomVectors(seed: number, n: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: DIM }, () => rng.normal()));
}

function exact(vectors: ReadonlyMap<string, Float32Array>, query: Float32Array, k: number, exclude = new Set<string>()): string[] {
  const scored = [...vectors].filter(([id]) => !exclude.has(id)).map(([id, v]) => ({ id, score: dotOf(v, query) }));
  return scored.sort((a, b) => b.score - a.score).slice(0, k).map((s) => s.id);
}

function dotOf(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let d = 0; d < a.length; d++) s += a[d]! * b[d]!;
  return s;
}

const ids = (found: readonly Neighbour[]): string[] => found.map((n) => n.id);

describe('VectorIndex', () => {
  for (const indexBuild of ['inline', 'worker'] as const) {
    it(`${indexBuild}: a removed id is never returned, its slot goes to the next new id, and results stay exact`, async () => {
      const index = new VectorIndex(indexOptions({ indexBuild }));
      try {
        const vectors = new Map<string, Float32Array>(randomVectors(7, 600).map((v, i) => [`v${i}`, v]));
        for (const [id, v] of vectors) index.set(id, v);
        await index.rebuild();
        // Half the removed ids are in the graph, half were written after it (dirty).
        for (let i = 0; i < 600; i += 3) {
          index.remove(`v${i}`);
          vectors.delete(`v${i}`);
        }
        const fresh = randomVectors(8, 150);
        fresh.forEach((v, i) => {
          index.set(`n${i}`, v);
          vectors.set(`n${i}`, v);
        });
        assert.equal(index.stats().size, 600, 'the new ids took the released slots');
        const check = (when: string) => {
          for (const query of randomVectors(9, 20)) {
            const got = ids(index.search(query, 10));
            for (const id of got) assert.ok(vectors.has(id), `${when}: returned removed ${id}`);
            assert.deepEqual(got, exact(vectors, query, 10), when);
          }
        };
        check('before a refresh');
        await index.rebuild();
        check('after a refresh');
        for (let i = 1; i < 600; i += 3) {
          index.remove(`v${i}`);
          vectors.delete(`v${i}`);
        }
        await index.rebuild();
        check('after removals and a full rebuild');
      } finally {
        await index.close();
      }
    });

    it(`${indexBuild}: a new or moved vector is searchable from the write that set it`, async () => {
      const index = new VectorIndex(indexOptions({ indexBuild }));
      try {
        const vectors = randomVectors(1, 1_000);
        vectors.forEach((v, i) => index.set(`v${i}`, v));
        await index.rebuild();
        assert.ok(index.stats().graphSize === 1_000 && index.stats().dirty === 0, JSON.stringify(index.stats()));

        const far = new Float32Array(DIM).fill(10);
        index.set('new', far);
        assert.deepEqual(ids(index.search(far, 1)), ['new'], 'a new vector, not yet in any graph');

        const moved = new Float32Array(DIM).fill(-10);
        index.set('v3', moved);
        assert.deepEqual(ids(index.search(moved, 1)), ['v3'], 'a moved vector, stale in the graph');
        const old = vectors[3]!;
        const stale = index.search(old, 1_001).find((n) => n.id === 'v3');
        // Summation order differs (the scan is unrolled), so equal up to float rounding; the graph copy is far off.
        assert.ok(Math.abs(stale!.score - dotOf(moved, old)) < 1e-9 * Math.abs(dotOf(moved, old)), 'scored with the current vector, never the graph copy');
      } finally {
        await index.close();
      }
    });

    it(`${indexBuild}: results equal exact search while refreshes come and go`, async () => {
      const index = new VectorIndex(indexOptions({ indexBuild }));
      try {
        const rng = createRng(2);
        const current = new Map<string, Float32Array>();
        const pool = randomVectors(3, 3_000);
        for (let step = 0; step < 3_000; step++) {
          // Half new vectors, half moves of existing ones: dirty sets of both kinds, refreshes triggered.
          const id = step % 2 === 0 || current.size === 0 ? `v${step}` : `v${2 * rng.int(Math.floor(step / 2))}`;
          const v = pool[step]!;
          index.set(id, v);
          current.set(id, v);
          if (step % 500 === 499) {
            const query = pool[rng.int(pool.length)]!;
            const exclude = new Set([...current.keys()].filter(() => rng.bool(0.05)));
            const want = exact(current, query, 10, exclude);
            const got = ids(index.search(query, 10, exclude));
            assert.ok(got.every((g) => !exclude.has(g)), 'exclude is honoured');
            // Graph hits may miss an item (approximate); anything returned is exactly scored and in order.
            assert.ok(overlap(got, want) >= 8, `step ${step}: ${got} vs ${want}`);
          }
        }
        await index.awaitRebuild();
        assert.ok(index.stats().refreshes >= 2, JSON.stringify(index.stats()));
        assert.equal(index.stats().failedRefreshes, 0);
      } finally {
        await index.close();
      }
    });
  }

  for (const indexBuild of ['inline', 'worker'] as const) {
    it(`${indexBuild}: a move within reindexDrift stays in the graph, scored with its current vector; beyond it, it is dirty`, async () => {
      const index = new VectorIndex(indexOptions({ indexBuild, reindexDrift: 0.2 }));
      try {
        const rng = createRng(9);
        const current = new Map<string, Float32Array>();
        randomVectors(10, 1_000).forEach((v, i) => {
          index.set(`v${i}`, v);
          current.set(`v${i}`, v);
        });
        await index.rebuild();
        const nudge = (id: string, scale: number): Float32Array => {
          const v = Float32Array.from(current.get(id)!, (x) => x + scale * rng.normal());
          index.set(id, v);
          current.set(id, v);
          return v;
        };
        // ~3% relative moves (σ 0.01 per coordinate on vectors of norm ~√8): within the bound, not dirty.
        for (let i = 0; i < 300; i++) nudge(`v${i}`, 0.01);
        assert.equal(index.stats().dirty, 0, JSON.stringify(index.stats()));
        assert.equal(index.stats().withinDrift, 300);
        const q = current.get('v7')!;
        const hit = index.search(q, 1_000).find((n) => n.id === 'v7');
        assert.ok(hit && Math.abs(hit.score - dotOf(q, q)) < 1e-9 * dotOf(q, q), 'scored with the current vector');
        // A move far beyond the bound makes the slot dirty (exactly searched) at once.
        const far = new Float32Array(DIM).fill(-10);
        index.set('v3', far);
        current.set('v3', far);
        assert.equal(index.stats().dirty, 1);
        assert.equal(index.stats().withinDrift, 299);
        assert.deepEqual(ids(index.search(far, 1)), ['v3']);
        // Many small steps add up: a slot leaves the graph once the sum crosses the bound, and refreshes
        // (threshold ones while this runs, then an explicit rebuild) take the moved ones back in.
        for (let round = 0; round < 40; round++) for (let i = 0; i < 100; i++) nudge(`v${i}`, 0.05);
        assert.ok(index.stats().dirty + index.stats().withinDrift > 0, JSON.stringify(index.stats()));
        assert.ok(recallAt10(index, current, randomVectors(11, 20)) >= 0.9, 'found through their graph position or exactly');
        await index.rebuild();
        assert.equal(index.stats().dirty, 0, JSON.stringify(index.stats()));
        assert.equal(index.stats().withinDrift, 0);
        assert.ok(recallAt10(index, current, randomVectors(12, 20)) >= 0.9, 'after the rebuild');
      } finally {
        await index.close();
      }
    });
  }

  it('inline refreshes happen at the same writes on every run (deterministic results)', () => {
    const run = (): string[] => {
      const index = new VectorIndex(indexOptions());
      const vectors = randomVectors(4, 2_000);
      vectors.forEach((v, i) => index.set(`v${i}`, v));
      vectors.slice(0, 300).forEach((v, i) => index.set(`v${i * 5}`, v));
      const out = vectors.slice(0, 20).flatMap((q) => ids(index.search(q, 10)));
      out.push(JSON.stringify(index.stats(), (k, v: unknown) => (k === 'lastRefreshMs' ? 0 : v)));
      void index.close();
      return out;
    };
    assert.deepEqual(run(), run());
  });

  it('a rebuild that fails is reported, and search stays exact', async () => {
    const errors: unknown[] = [];
    const index = new FailingIndex(indexOptions({ onError: (err) => errors.push(err) }));
    try {
      const vectors = randomVectors(5, 500);
      const current = new Map(vectors.map((v, i) => [`v${i}`, v] as const));
      for (const [id, v] of current) index.set(id, v);
      await index.awaitRebuild();
      await index.rebuild();
      assert.ok(errors.length >= 2 && index.stats().failedRefreshes === errors.length, JSON.stringify(index.stats()));
      assert.equal(index.stats().graphSize, 0);
      for (const q of vectors.slice(0, 10)) assert.deepEqual(ids(index.search(q, 5)), exact(current, q, 5));
    } finally {
      await index.close();
    }
  });
});

describe('EmbeddedStore index wiring', () => {
  function store(overrides: Record<string, unknown> = {}): EmbeddedStore {
    const s = parseConfig({ store: { dimension: DIM, embedded: { exactSearchBelow: 100, rebuildDirtyMin: 50, indexBuild: 'inline', ...overrides } } }).store;
    return createEmbeddedStore({ ...s, ...s.embedded, path: undefined });
  }

  it('catalogue placeholders are never indexed nor returned, before or after they are learned', async () => {
    const st = store();
    try {
      await st.putItemMetadata(Array.from({ length: 2_000 }, (_, i) => ({ itemId: `i${i}`, title: `t${i}`, categories: [] })));
      const learned = randomVectors(6, 300);
      await st.applyItemDeltas(learned.map((v, i) => ({ itemId: `i${i}`, initialVector: v, interactions: 1, atMs: T0 })));
      await st.rebuildIndexes();
      assert.equal(st.indexStats().items.size, 300, 'only learned items are in the index');
      // Catalogue after learning must not re-index or un-learn anything either.
      await st.putItemMetadata([{ itemId: 'i1', title: 'again', categories: ['x'] }, { itemId: 'i5000', title: 'late', categories: [] }]);
      assert.equal(st.indexStats().items.size, 300);
      for (const query of [...randomVectors(7, 20), new Float32Array(DIM), new Float32Array(DIM).fill(-1)]) {
        const found = await st.searchItems(query, 1_000);
        assert.equal(found.length, 300, 'every learned item and nothing else');
        assert.ok(found.every((n) => Number(n.id.slice(1)) < 300), 'no placeholder returned');
      }
      // Learning an item that was catalogue-only makes it searchable at once.
      const late = new Float32Array(DIM).fill(5);
      await st.applyItemDeltas([{ itemId: 'i1999', initialVector: late, interactions: 1, atMs: T0 }]);
      assert.equal((await st.searchItems(late, 1))[0]?.id, 'i1999');
    } finally {
      await st.close();
    }
  });

  it('a vector is searchable right after the commit that wrote it (worker refresh in flight or not)', async () => {
    const st = store({ indexBuild: 'worker' });
    try {
      const users = randomVectors(8, 400);
      await st.putUsers(users.map((v, i) => userProfile(`u${i}`, v)));
      await st.applyItemDeltas(users.map((v, i) => ({ itemId: `i${i}`, initialVector: v, interactions: 1, atMs: T0 })));
      for (let round = 0; round < 5; round++) {
        const v = new Float32Array(DIM).fill(round % 2 === 0 ? 20 + round : -20 - round);
        await st.applyItemDeltas([{ itemId: `i${round}`, vectorDelta: v, interactions: 0, atMs: T0 }]);
        await st.putUsers([userProfile(`new-u${round}`, v)]);
        const item = (await st.getItems([`i${round}`])).get(`i${round}`)!;
        assert.equal((await st.searchItems(item.vector, 1))[0]?.id, `i${round}`);
        assert.equal((await st.searchUsers(v, 1))[0]?.id, `new-u${round}`);
        assert.deepEqual(ids(await st.searchUsers(v, 1, new Set([`new-u${round}`]))).includes(`new-u${round}`), false);
      }
      await st.awaitIndexRebuilds();
    } finally {
      await st.close();
    }
  });
});

/** Every refresh fails, half of them synchronously, half asynchronously (as a dying worker would). */
class FailingIndex extends VectorIndex {
  protected override createBuilds(): GraphBuilds {
    let calls = 0;
    return {
      needsFull: true,
      sync: () => {
        if (calls++ % 2 === 0) throw new Error('build failed');
        return Promise.reject(new Error('worker died'));
      },
      reset: () => {},
      close: async () => {},
    };
  }
}

function userProfile(userId: string, vector: Float32Array) {
  return { userId, vector, recentItems: [], interactionCount: 1, consumed: new Uint8Array(8), firstSeenMs: T0, lastSeenMs: T0 };
}

/** Mean overlap of the index's top 10 with exact search (graph hits are approximate at ef 64, d=8). */
function recallAt10(index: VectorIndex, current: ReadonlyMap<string, Float32Array>, queries: readonly Float32Array[]): number {
  let hits = 0;
  for (const q of queries) hits += overlap(ids(index.search(q, 10)), exact(current, q, 10));
  return hits / (10 * queries.length);
}

function overlap(a: readonly string[], b: readonly string[]): number {
  const set = new Set(b);
  return a.filter((x) => set.has(x)).length;
}
