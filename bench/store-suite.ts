import { loadConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildStore } from '../src/main.ts';
import { machine, save, type Row } from './report.ts';
import { benchStore } from './store.ts';

/**
 * `npm run bench -- store`: the same workload on every reachable store adapter, 100k users and 100k items
 * at the configured dimension. The embedded store always; Qdrant when `QDRANT_URL` is set.
 */
export async function runStoreBench(scale: number): Promise<void> {
  const n = Math.max(1_000, Math.round(100_000 * scale));
  const targets: { name: string; overrides: Record<string, unknown> }[] = [{ name: 'embedded', overrides: {} }];
  if (process.env.QDRANT_URL) {
    targets.push({ name: 'qdrant', overrides: { kind: 'qdrant', qdrant: { url: process.env.QDRANT_URL, collectionPrefix: `bench_${Date.now()}_` } } });
  } else {
    process.stderr.write('store bench: QDRANT_URL unset, so Qdrant rows are skipped (no Qdrant can run on this machine)\n');
  }
  const rows: Row[] = [];
  for (const target of targets) {
    const config = loadConfig({ overrides: { store: target.overrides } });
    const store = buildStore(config, silentLogger());
    await store.init();
    try {
      const result = await benchStore(store, { users: n, items: n, dimension: config.store.dimension, queries: 500 });
      for (const r of result) {
        rows.push({
          store: r.store,
          op: r.op,
          n: r.n,
          'per s': r.perSecond ?? '',
          'p50 ms': r.p50Ms ?? '',
          'p99 ms': r.p99Ms ?? '',
        });
      }
    } finally {
      await store.close();
    }
  }
  save('store', `Vector store adapters, ${n.toLocaleString('en-US')} users and items`, rows, { machine: machine() });
}
