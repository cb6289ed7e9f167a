import { QdrantClient } from '@qdrant/js-client-rest';
import { provideQdrant, type ProvidedQdrant } from '../scripts/qdrant/server.mjs';
import { recordServerTimes } from '../scripts/qdrant/server-time.mjs';
import { loadConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildStore } from '../src/main.ts';
import type { VectorStore } from '../src/store/port.ts';
import { createQdrantStore } from '../src/store/qdrant/index.ts';
import { machine, save, type Row } from './report.ts';
import { benchServerTimes, benchStore } from './store.ts';

/** Beside every absolute Qdrant figure: the server of ../shared/bin is not a release build. */
export const OPT_LEVEL_NOTE = 'opt-level=1 server';

export const QDRANT_BUILD_NOTE =
  'Qdrant figures come from the 1.17.1 server of ../shared/bin (or QDRANT_URL), built with opt-level=1: ' +
  'absolute figures are not those of a release build (HNSW build and search run slower); compare ratios.';

/**
 * `npm run bench -- store`: the same workload on the embedded store and the Qdrant adapter in one run, 100k users
 * and 100k items at the configured dimension (× BENCH_SCALE), then, for Qdrant, the client's p50 per request
 * beside the server's reported `time` for upsert, retrieve, search and popular.
 *
 * Qdrant: `QDRANT_URL` if set, else a server started for the run by `scripts/qdrant/server.mjs` (testcontainers
 * or the ../shared/bin binary) and stopped after it; the bench's `bench_<time>_` collections are dropped at the
 * end either way. Where no Qdrant can be had, its rows are left out with the reason (BENCH_QDRANT=0 skips it).
 * The Qdrant rows measure the adapter itself (`createQdrantStore`), not the tiered store the pipeline builds.
 */
export async function runStoreBench(scale: number): Promise<void> {
  const n = Math.max(1_000, Math.round(100_000 * scale));
  const calls = Math.max(30, Math.round(200 * Math.min(1, scale * 4)));
  const rows: Row[] = [];
  const embeddedConfig = loadConfig({ overrides: { store: { kind: 'embedded' } } });
  const embedded = buildStore(embeddedConfig, silentLogger());
  try {
    await measure(embedded, n, embeddedConfig.store.dimension, rows);
  } finally {
    await embedded.close();
  }

  await withQdrant('store bench', (qdrant) => measureQdrant(qdrant, n, calls, rows));
  save('store', `Vector store adapters, ${n.toLocaleString('en-US')} users and items`, rows, {
    machine: `${machine()}. ${QDRANT_BUILD_NOTE}`,
  });
}

/** `benchStore` on a store this initializes; the caller closes it. */
async function measure(
  store: VectorStore,
  n: number,
  dimension: number,
  rows: Row[],
  note?: string,
): Promise<void> {
  await store.init();
  const result = await benchStore(store, { users: n, items: n, dimension, queries: 500 });
  for (const r of result) {
    rows.push({
      store: r.store,
      op: r.op,
      n: r.n,
      'per s': r.perSecond ?? '',
      'p50 ms': r.p50Ms ?? '',
      'p99 ms': r.p99Ms ?? '',
      ...(note ? { note } : {}),
    });
  }
}

async function measureQdrant(qdrant: ProvidedQdrant, n: number, calls: number, rows: Row[]): Promise<void> {
  const prefix = `bench_${Date.now()}_`;
  const config = loadConfig({
    overrides: {
      store: {
        kind: 'qdrant',
        qdrant: {
          url: qdrant.url,
          collectionPrefix: prefix,
          ...(qdrant.apiKey ? { apiKey: qdrant.apiKey } : {}),
        },
      },
    },
  });
  let clientTimes: { op: string; ms: number }[] = [];
  const store = createQdrantStore({
    config: config.store,
    log: silentLogger(),
    onRequest: (op, seconds, outcome) => {
      if (outcome === 'ok') clientTimes.push({ op, ms: seconds * 1000 });
    },
  });
  try {
    await measure(store, n, config.store.dimension, rows, OPT_LEVEL_NOTE);
    const timed = await benchServerTimes(store, {
      items: n,
      users: n,
      dimension: config.store.dimension,
      calls,
      takeClientTimes: () => {
        const taken = clientTimes;
        clientTimes = [];
        return taken;
      },
      recordServerTimes: () => recordServerTimes(qdrant.url),
    });
    for (const r of timed) {
      rows.push({
        store: 'qdrant',
        op: r.op,
        n: r.n,
        'client p50 ms': r.clientP50Ms,
        'server p50 ms': r.serverP50Ms,
        'client/server': r.clientP50Ms / r.serverP50Ms,
        note: OPT_LEVEL_NOTE,
      });
    }
  } finally {
    await store.close();
    await dropCollections(qdrant, prefix);
  }
}

/**
 * Calls `use` with a Qdrant (QDRANT_URL, else one started for it and stopped after); where none can be had, or
 * BENCH_QDRANT=0, says why on stderr and does not call it.
 */
export async function withQdrant(
  bench: string,
  use: (qdrant: ProvidedQdrant) => Promise<void>,
): Promise<void> {
  const qdrant = process.env.BENCH_QDRANT === '0' ? null : await provideQdrant().catch((err: Error) => err);
  if (qdrant === null || qdrant instanceof Error) {
    process.stderr.write(`${bench}: no Qdrant rows (${qdrant ? qdrant.message : 'BENCH_QDRANT=0'})\n`);
    return;
  }
  process.stderr.write(`${bench}: Qdrant at ${qdrant.url} (${qdrant.source})\n`);
  try {
    await use(qdrant);
  } finally {
    await qdrant.stop();
  }
}

/** Drops every collection named with `prefix` (users and items, and whatever else the run made). */
export async function dropCollections(qdrant: ProvidedQdrant, prefix: string): Promise<void> {
  const admin = new QdrantClient({
    url: qdrant.url,
    checkCompatibility: false,
    ...(qdrant.apiKey ? { headers: { 'api-key': qdrant.apiKey } } : {}),
  });
  const { collections } = await admin.getCollections();
  for (const { name } of collections) {
    if (name.startsWith(prefix)) await admin.deleteCollection(name);
  }
}
