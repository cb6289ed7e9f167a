import { createRng } from '../src/data/random.ts';
import { percentile } from '../src/util/stats.ts';
import { performance } from 'node:perf_hooks';
import type { ItemDelta, UserProfile, VectorStore } from '../src/store/port.ts';
import type { ServerTimeRecorder } from '../scripts/qdrant/server-time.mjs';

/**
 * Store throughput and latency, the same workload for every `VectorStore` adapter:
 *
 * 1. `putUsers` of `users` profiles in batches of `batchSize` (500): users/s;
 * 2. `applyItemDeltas` creating `items` items in batches: deltas/s (each: initial vector, one interaction,
 *    a user, 5 co-occurrences);
 * 3. `applyItemDeltas` updating random existing items, `items` deltas in batches: deltas/s (the steady state);
 * 4. sequential single calls, `queries` each after `warmup` unmeasured ones, latency p50/p99 in ms:
 *    `searchItems` k=50 excluding 20 ids (a user's recent items), `searchItems` k=50 without exclusions,
 *    `searchUsers` k=20 excluding 1, `popularItems` k=20, `getItems` of 100 ids (a candidate list).
 *
 * The caller owns the store: it passes one that `init()` has already run on (empty, so the counts mean what
 * they say) and closes it afterwards. Inputs are generated from a fixed seed, so runs are comparable.
 * Qdrant note: HNSW is built by Qdrant's optimizer in the background once a segment passes its indexing
 * threshold; searches right after the writes may still be full scans of unindexed segments.
 */

export interface BenchStoreOptions {
  readonly users: number;
  readonly items: number;
  readonly dimension: number;
  /** Measured calls per latency row. */
  readonly queries: number;
  /** @default 500 */
  readonly batchSize?: number;
  /** Unmeasured calls before each latency row. @default min(20, queries) */
  readonly warmup?: number;
  /** Bytes of each user's consumed-items filter (`store.consumedFilterBytes`). @default 1024 */
  readonly consumedFilterBytes?: number;
  /** @default 1 */
  readonly seed?: number;
}

export interface BenchRow {
  readonly store: VectorStore['kind'];
  readonly op: string;
  /** Records written or calls measured. */
  readonly n: number;
  readonly batch: number | null;
  readonly seconds: number;
  /** Throughput rows: records per second. */
  readonly perSecond: number | null;
  /** Latency rows: per-call latency percentiles, ms. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

const T0 = 1_760_000_000_000;
const DAY = 86_400_000;

export async function benchStore(store: VectorStore, options: BenchStoreOptions): Promise<BenchRow[]> {
  const { users, items, dimension, queries } = options;
  const batchSize = options.batchSize ?? 500;
  const warmup = options.warmup ?? Math.min(20, queries);
  const filterBytes = options.consumedFilterBytes ?? 1_024;
  const rng = createRng(options.seed ?? 1);
  const rand = (): number => rng.next();
  const vector = () => Float32Array.from({ length: dimension }, () => Math.fround((rand() * 2 - 1) * 0.1));
  const pick = (n: number) => Math.floor(rand() * n);
  const itemId = (i: number) => `item-${i}`;
  const userId = (i: number) => `user-${i}`;
  const rows: BenchRow[] = [];

  const throughput = async (
    op: string,
    total: number,
    write: (from: number, to: number) => Promise<void>,
  ) => {
    let seconds = 0;
    for (let from = 0; from < total; from += batchSize) {
      const to = Math.min(total, from + batchSize);
      const started = performance.now();
      await write(from, to);
      seconds += (performance.now() - started) / 1000;
    }
    rows.push({
      store: store.kind,
      op,
      n: total,
      batch: batchSize,
      seconds,
      perSecond: total / seconds,
      p50Ms: null,
      p99Ms: null,
    });
  };

  await throughput('putUsers', users, (from, to) => {
    const batch: UserProfile[] = [];
    for (let i = from; i < to; i++) {
      const at = T0 - pick(30 * DAY);
      const consumed = new Uint8Array(filterBytes);
      for (let b = 0; b < 16; b++) consumed[pick(filterBytes)] = 1 << pick(8);
      batch.push({
        userId: userId(i),
        vector: vector(),
        recentItems: Array.from({ length: 20 }, (_, j) => ({
          id: itemId(pick(Math.max(1, items))),
          atMs: at - j * 60_000,
        })),
        interactionCount: 20,
        consumed,
        firstSeenMs: at - 20 * 60_000,
        lastSeenMs: at,
      });
    }
    return store.putUsers(batch);
  });

  const delta = (i: number, create: boolean): ItemDelta => {
    const at = T0 - pick(30 * DAY);
    return {
      itemId: itemId(i),
      ...(create ? { initialVector: vector() } : { vectorDelta: vector() }),
      interactions: 1,
      atMs: at,
      seenBy: { id: userId(pick(Math.max(1, users))), atMs: at },
      cooccurrence: new Map(Array.from({ length: 5 }, () => [itemId(pick(items)), 1] as const)),
    };
  };
  await throughput('applyItemDeltas (new items)', items, async (from, to) => {
    const batch: ItemDelta[] = [];
    for (let i = from; i < to; i++) batch.push(delta(i, true));
    await store.applyItemDeltas(batch);
  });
  await throughput('applyItemDeltas (existing items)', items, async (from, to) => {
    const batch: ItemDelta[] = [];
    for (let i = from; i < to; i++) batch.push(delta(pick(items), false));
    await store.applyItemDeltas(batch);
  });

  const latency = async (op: string, call: () => Promise<unknown>) => {
    for (let i = 0; i < warmup; i++) await call();
    const ms: number[] = [];
    const started = performance.now();
    for (let i = 0; i < queries; i++) {
      const t = performance.now();
      await call();
      ms.push(performance.now() - t);
    }
    rows.push({
      store: store.kind,
      op,
      n: queries,
      batch: null,
      seconds: (performance.now() - started) / 1000,
      perSecond: null,
      p50Ms: percentile(ms, 50),
      p99Ms: percentile(ms, 99),
    });
  };
  const excludeItems = () => new Set(Array.from({ length: 20 }, () => itemId(pick(items))));
  await latency('searchItems k=50 exclude=20', () => store.searchItems(vector(), 50, excludeItems()));
  await latency('searchItems k=50', () => store.searchItems(vector(), 50));
  await latency('searchUsers k=20 exclude=1', () =>
    store.searchUsers(vector(), 20, new Set([userId(pick(users))])),
  );
  await latency('popularItems k=20', () => store.popularItems(20, T0));
  await latency('getItems n=100', () =>
    store.getItems(Array.from({ length: 100 }, () => itemId(pick(items)))),
  );
  return rows;
}


/** One row of `benchServerTimes`: the client's and the server's median for the same kind of call. */
export interface ServerTimeRow {
  /** The store call and its size, with the Qdrant REST operation it makes. */
  readonly op: string;
  readonly n: number;
  readonly clientP50Ms: number;
  readonly serverP50Ms: number;
}

export interface ServerTimeOptions {
  readonly items: number;
  readonly users: number;
  readonly dimension: number;
  /** Measured calls per row (and as many recorded for the server's time). */
  readonly calls: number;
  /** Client time of each HTTP request as the adapter reports it (`onRequest`), to be drained per pass. */
  readonly takeClientTimes: () => { op: string; ms: number }[];
  /** Starts recording the server's reported times (`scripts/qdrant/server-time.mjs`). */
  readonly recordServerTimes: () => ServerTimeRecorder;
  /** @default 2 */
  readonly seed?: number;
}

/**
 * Qdrant only, after `benchStore` filled the store: for upsert, retrieve, search (query) and popular (scroll
 * with order_by), the client's p50 per request beside the p50 of the `time` the server reports for it. Two
 * passes of the same calls: one records the server's times (reading a copy of each answer costs the client a
 * little), the other measures the client alone.
 */
export async function benchServerTimes(store: VectorStore, options: ServerTimeOptions): Promise<ServerTimeRow[]> {
  const { items, users, dimension, calls } = options;
  const rng = createRng(options.seed ?? 2);
  const vector = () => Float32Array.from({ length: dimension }, () => Math.fround((rng.next() * 2 - 1) * 0.1));
  const pick = (n: number) => Math.floor(rng.next() * n);
  const kinds = [
    {
      op: 'upsert: putUsers n=10',
      call: () =>
        store.putUsers(
          Array.from({ length: 10 }, () => ({
            userId: `user-${pick(users)}`,
            vector: vector(),
            recentItems: [{ id: `item-${pick(items)}`, atMs: T0 }],
            interactionCount: 1,
            consumed: new Uint8Array(64),
            firstSeenMs: T0,
            lastSeenMs: T0,
          })),
        ),
    },
    { op: 'retrieve: getItems n=100', call: () => store.getItems(Array.from({ length: 100 }, () => `item-${pick(items)}`)) },
    { op: 'search (query): searchItems k=50', call: () => store.searchItems(vector(), 50) },
    { op: 'popular (scroll order_by): popularItems k=20', call: () => store.popularItems(20, T0) },
  ] as const;
  const rows: ServerTimeRow[] = [];
  for (const kind of kinds) {
    for (let i = 0; i < Math.min(10, calls); i++) await kind.call();
    options.takeClientTimes();
    const recorder = options.recordServerTimes();
    try {
      for (let i = 0; i < calls; i++) await kind.call();
    } finally {
      recorder.restore();
    }
    await recorder.settled();
    const server = recorder.exchanges.map((e) => e.serverMs).filter(Number.isFinite);
    options.takeClientTimes();
    for (let i = 0; i < calls; i++) await kind.call();
    const client = options.takeClientTimes().map((c) => c.ms);
    rows.push({ op: kind.op, n: calls, clientP50Ms: percentile(client, 50), serverP50Ms: percentile(server, 50) });
  }
  return rows;
}
