import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/load.ts';
import type { Interaction } from '../src/domain/events.ts';
import { generateCatalogue, generateStream } from '../src/data/synthetic.ts';
import { createEmbeddedEventLog } from '../src/eventlog/embedded/log.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline } from '../src/main.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from '../src/cli/produce.ts';
import { createEmbeddedStore } from '../src/store/embedded/index.ts';
import type { Neighbour } from '../src/store/port.ts';
import { percentile } from '../src/util/stats.ts';
import { machine, runAsScript, save, type Row } from './report.ts';

/**
 * Recall@50 of the embedded store's searches after the REAL pipeline learned a generated stream (catalogue
 * first, as `npm start` and the pipeline bench do; ranking off), measured right after the last batch was
 * processed, without waiting for any graph refresh: this is what the "embedding" candidate source sees. Exact
 * = a flat scan over every learned vector the store holds (catalogue-only items excluded).
 * `node --import tsx bench/ann-pipeline.ts` (BENCH_SCALE scales events, users and items).
 */
export async function runAnnPipelineBench(scale: number): Promise<Row[]> {
  const scaled = (n: number): number => Math.max(1_000, Math.round(n * scale));
  const synthetic = { users: scaled(50_000), items: scaled(50_000), events: scaled(100_000), seed: 11, durationMs: 90 * 86_400_000 };
  const config = loadConfig({ env: process.env, overrides: { ops: { port: 0 } } });
  const logger = silentLogger();
  const s = config.store;
  const store = createEmbeddedStore({ ...s, ...s.embedded, path: undefined });
  const log = createEmbeddedEventLog(config.eventLog, logger);
  const { runner, processor, topics, framing, engine } = await buildPipeline(config, { logger, log, store });
  const userIds = new Set<string>();
  const events: Interaction[] = [];
  for (const e of generateStream(synthetic)) {
    events.push(e);
    userIds.add(e.userId);
  }
  await runner.start();
  const catalogue = generateCatalogue(synthetic);
  await produceItems(log, topics.items, catalogue, engine.codecs, framing);
  processor.rankingEnabled = false;
  const started = performance.now();
  await produceInteractions(log, topics.interactions, events, engine.codecs, framing, NO_MALFORMED);
  while (runner.processedRecords < events.length) await new Promise((r) => setTimeout(r, 20));
  const learnSeconds = (performance.now() - started) / 1000;
  await runner.stop();
  const rows: Row[] = [];
  try {
    const items = learnedVectors(await store.getItems(catalogue.map((c) => c.itemId)));
    const users = learnedVectors(await store.getUsers([...userIds]));
    const queries = [...users.values()].slice(0, 200);
    rows.push(await recallRow('items', items, queries, (q) => store.searchItems(q, 50)));
    rows.push(await recallRow('users', users, queries, (q) => store.searchUsers(q, 50)));
    const stats = store.indexStats();
    for (const row of rows) Object.assign(row, { 'learn s': learnSeconds });
    save('ann-pipeline', `Recall@50 after the real pipeline learned ${synthetic.events.toLocaleString('en-US')} events (${synthetic.items.toLocaleString('en-US')} items, no wait for refreshes)`, rows, { machine: machine(), synthetic, index: stats });
  } finally {
    await store.close();
    await log.close();
  }
  return rows;
}

function learnedVectors(profiles: ReadonlyMap<string, { vector: Float32Array; firstSeenMs: number; lastSeenMs: number }>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [id, p] of profiles) if (p.firstSeenMs <= p.lastSeenMs) out.set(id, p.vector);
  return out;
}

async function recallRow(
  collection: string,
  vectors: ReadonlyMap<string, Float32Array>,
  queries: readonly Float32Array[],
  search: (q: Float32Array) => Promise<Neighbour[]>,
): Promise<Row> {
  let hits = 0;
  const ms: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    const found = await search(q);
    ms.push(performance.now() - t);
    const truth = new Set(exactTop(vectors, q, 50));
    hits += found.filter((n) => truth.has(n.id)).length;
  }
  return { collection, learned: vectors.size, 'recall@50': hits / (queries.length * 50), 'p50 ms': percentile(ms, 50), 'p99 ms': percentile(ms, 99) };
}

function exactTop(vectors: ReadonlyMap<string, Float32Array>, q: Float32Array, k: number): string[] {
  const scored: { id: string; score: number }[] = [];
  for (const [id, v] of vectors) {
    let s = 0;
    for (let d = 0; d < q.length; d++) s += v[d]! * q[d]!;
    scored.push({ id, score: s });
  }
  return scored.sort((a, b) => b.score - a.score).slice(0, k).map((x) => x.id);
}

runAsScript(import.meta.url, async () => {
  await runAnnPipelineBench(Number(process.env.BENCH_SCALE ?? 1));
});
