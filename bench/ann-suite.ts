import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildStore } from '../src/main.ts';
import type { VectorStore } from '../src/store/port.ts';
import { AnnWorkload, DEFAULT_ANN_WORKLOAD, type AnnWorkloadOptions, type RecallRow } from './ann-recall.ts';
import { machine, runAsScript, save, type Row } from './report.ts';

/**
 * `npm run bench -- ann` (or `node --import tsx bench/ann-suite.ts`): recall@50 of the embedded store's
 * vector search against exact search, beside its search latency, at 100k users and 100k items (scaled by
 * BENCH_SCALE), on the `AnnWorkload` (catalogue first, warm-up, online drift, a burst of new vectors).
 *
 * Each phase is measured twice where it matters: right after its writes ("no wait": whatever graph the
 * worker had swapped in by then, the rest searched exactly) and after `awaitIndexRebuilds()` ("rebuilt").
 * Config overrides come from STARSTREAM_* variables as usual (e.g. STARSTREAM_STORE__EMBEDDED__INDEX_BUILD).
 */
export async function runAnnBench(scale: number): Promise<void> {
  const d = DEFAULT_ANN_WORKLOAD;
  const scaled = (n: number): number => Math.max(1, Math.round(n * scale));
  const options: AnnWorkloadOptions = { ...d, users: scaled(d.users), items: scaled(d.items), driftEvents: scaled(d.driftEvents), placeholders: scaled(d.placeholders) };
  const config = loadConfig({ env: process.env });
  const store = buildStore(config, silentLogger());
  await store.init();
  try {
    const { rows, timings } = await annRecallPhases(store, options);
    const title = `ANN recall@${options.k} vs exact, ${options.users.toLocaleString('en-US')} users / ${options.items.toLocaleString('en-US')} items (indexBuild=${config.store.embedded.indexBuild})`;
    save('ann-recall', title, rows.map(toRow), { machine: machine(), options, timings, index: indexStats(store) });
  } finally {
    await store.close();
  }
}

/** Runs the workload's phases on `store`, measuring recall and latency after each. */
export async function annRecallPhases(
  store: VectorStore,
  options: AnnWorkloadOptions,
): Promise<{ rows: RecallRow[]; timings: Record<string, number> }> {
  const w = new AnnWorkload(store, options);
  const rows: RecallRow[] = [];
  const timings: Record<string, number> = {};
  const timed = async (name: string, run: () => Promise<void>): Promise<void> => {
    const started = performance.now();
    await run();
    timings[`${name} s`] = (performance.now() - started) / 1000;
  };
  await timed('catalogue', () => w.loadCatalogue());
  await timed('warm-up writes', () => w.warmUp());
  rows.push(...(await w.measure('warm-up, no wait')));
  await timed('wait for rebuild after warm-up', () => awaitRebuilds(store));
  rows.push(...(await w.measure('warm-up, rebuilt')));
  await timed('drift writes', () => w.drift(options.driftEvents));
  rows.push(...(await w.measure('drift, no wait')));
  await timed('wait for rebuild after drift', () => awaitRebuilds(store));
  rows.push(...(await w.measure('drift, rebuilt')));
  await w.burst();
  rows.push(...(await w.measure('burst, no wait')));
  return { rows, timings };
}

/** `awaitIndexRebuilds` where the store has one (the embedded store); other stores are not waited for. */
async function awaitRebuilds(store: VectorStore): Promise<void> {
  const s = store as Partial<{ awaitIndexRebuilds(): Promise<void> }>;
  await s.awaitIndexRebuilds?.();
}

function indexStats(store: VectorStore): unknown {
  const s = store as Partial<{ indexStats(): unknown }>;
  return s.indexStats?.() ?? null;
}

function toRow(r: RecallRow): Row {
  return { phase: r.phase, collection: r.collection, 'recall@k': r.recall, 'placeholders returned': r.placeholdersReturned, 'p50 ms': r.p50Ms, 'p99 ms': r.p99Ms };
}

runAsScript(import.meta.url, () => runAnnBench(Number(process.env.BENCH_SCALE ?? 1)));
