import assert from 'node:assert/strict';
import { it } from 'node:test';
import { AnnWorkload, DEFAULT_ANN_WORKLOAD, type RecallRow } from '../../bench/ann-recall.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createEmbeddedStore } from '../../src/store/embedded/index.ts';

/**
 * Recall@50 against exact search at 100k users and 100k items after an online run (catalogue first, learned
 * vectors, BPR drift committed in batches, a burst of new vectors), with the default index parameters.
 *
 * Deterministic: both refresh thresholds are set out of reach, so the graphs are refreshed only at explicit points
 * (`rebuildIndexes()`), so the worker builds the same graphs from the same rows on every run; the workload is
 * seeded. What is searched at each measurement therefore does not depend on timing.
 */

const OUT_OF_REACH = 1_000_000_000;

it('recall@50 >= 0.95 for items and users at 100k, after the run and right after an unabsorbed burst', { timeout: 600_000 }, async (t) => {
  const s = parseConfig({ store: { embedded: { exactSearchBelow: OUT_OF_REACH, rebuildDirtyMin: OUT_OF_REACH, indexBuild: 'worker' } } }).store;
  const store = createEmbeddedStore({ ...s, ...s.embedded, path: undefined });
  const o = { ...DEFAULT_ANN_WORKLOAD, queries: 100 };
  const w = new AnnWorkload(store, o);
  try {
    await w.loadCatalogue();
    await w.warmUp();
    await store.rebuildIndexes();
    await w.drift(5_000);
    await store.rebuildIndexes();
    // More drift that no refresh absorbs: those vectors moved since the graphs placed them, within the drift bound
    // (found through their graph position, scored with their current vector) or beyond it (searched exactly).
    await w.drift(2_000);
    const afterRun = await w.measure('after the run');
    const stale = store.indexStats();
    t.diagnostic(`after the run: ${JSON.stringify(stale, (k, v: unknown) => (k === 'lastRefreshMs' ? undefined : v))}`);
    assert.ok(stale.items.withinDrift > 0 && stale.users.withinDrift > 0, JSON.stringify(stale));
    await w.burst();
    const afterBurst = await w.measure('after the burst');
    const burst = store.indexStats();
    assert.equal(burst.items.graphSize, o.items, 'the burst is in no graph');
    assert.equal(burst.users.graphSize, o.users);
    for (const row of [...afterRun, ...afterBurst]) {
      t.diagnostic(`${row.phase}, ${row.collection}: recall@${o.k} ${row.recall.toFixed(4)}`);
      assertRow(row);
    }
  } finally {
    await store.close();
  }
});

function assertRow(row: RecallRow): void {
  const what = `${row.phase}, ${row.collection}: ${JSON.stringify(row)}`;
  assert.equal(row.placeholdersReturned, 0, what);
  assert.ok(row.recall >= 0.95, what);
}

