import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import { createCodecs } from '../src/eventlog/codec/avro.ts';
import { createFraming } from '../src/eventlog/codec/framing.ts';
import { EmbeddedStore } from '../src/store/embedded/index.ts';
import type { Interaction } from '../src/domain/events.ts';
import { generateCatalogue, generateStream } from '../src/data/synthetic.ts';
import { lineChartSvg } from '../src/eval/plot.ts';
import { createEmbeddedEventLog } from '../src/eventlog/embedded/log.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline, buildStore } from '../src/main.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from '../src/cli/produce.ts';
import { Progress } from '../src/cli/progress.ts';
import { percentile } from '../src/util/stats.ts';
import { writeAtomically } from '../src/util/files.ts';
import { CollaborativeState } from '../src/store/embedded/state/collaborative-state.ts';
import { captureSnapshot, decodeSnapshot, encodeSnapshot, restoreSnapshot } from '../src/store/embedded/state/snapshot.ts';
import { RESULTS_DIR, machine, save, type Row } from './report.ts';

/**
 * The pipeline on its embedded default over a generated stream, in three phases on one warm pipeline:
 *
 * 1. learn: `events` interactions with ranking off (ingest + graph + embeddings), unthrottled: events/s;
 * 2. rank: `rankedEvents` more with candidates + evidence + baseline ranking on, unthrottled: recs/s;
 * 3. latency: `latencySeconds` at a fixed rate, half of phase 2's throughput: end-to-end latency
 *    (record appended → its recommendation acknowledged) p50/p99.
 *
 * RSS and heap are sampled every second throughout, plotted to `pipeline-memory.svg`.
 */

export interface PipelineBenchOptions {
  readonly events: number;
  readonly rankedEvents: number;
  readonly latencySeconds: number;
  readonly users: number;
  readonly items: number;
  readonly seed: number;
}

export const DEFAULT_PIPELINE_BENCH: PipelineBenchOptions = {
  events: 1_000_000,
  rankedEvents: 30_000,
  latencySeconds: 20,
  users: 50_000,
  items: 50_000,
  seed: 11,
};

export async function benchPipeline(options: PipelineBenchOptions = DEFAULT_PIPELINE_BENCH): Promise<Row[]> {
  const config = loadConfig({ overrides: { ops: { port: 0 } } });
  const logger = silentLogger();
  const ceiling = await rawCeiling(config, options);
  const log = createEmbeddedEventLog(config.eventLog, logger);
  const endToEnd: number[] = [];
  let recording = false;
  const store = buildStore(config, logger);
  const pipeline = await buildPipeline(config, {
    logger,
    log,
    store,
    observer: { endToEndLatency: (s) => void (recording && endToEnd.push(s * 1000)) },
  });
  const { runner, processor, topics, framing, engine } = pipeline;
  const total = options.events + options.rankedEvents + options.latencySeconds * 5_000;
  const synthetic = { users: options.users, items: options.items, events: total, seed: options.seed, durationMs: 90 * 86_400_000 };
  const stream = generateStream(synthetic)[Symbol.iterator]();
  const take = (n: number): Iterable<Interaction> => ({
    [Symbol.iterator]: () => ({
      next: () => (n-- > 0 ? stream.next() : { done: true, value: undefined }),
    }),
  });

  const memory: { t: number; rssMb: number; heapMb: number }[] = [];
  const t0 = performance.now();
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    memory.push({ t: (performance.now() - t0) / 1000, rssMb: m.rss / 2 ** 20, heapMb: m.heapUsed / 2 ** 20 });
  }, 1_000);

  await runner.start();
  await produceItems(log, topics.items, generateCatalogue(synthetic), engine.codecs, framing);
  /** Waits until `count` records are processed; progress counts from where the phase started. */
  const waitFor = async (count: number, progress: Progress, from = 0): Promise<void> => {
    while (runner.processedRecords < count) {
      progress.update(runner.processedRecords - from);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const send = (events: Iterable<Interaction>): Promise<number> =>
    produceInteractions(log, topics.interactions, events, engine.codecs, framing, NO_MALFORMED);

  // Phase 1: learn only.
  processor.rankingEnabled = false;
  let start = performance.now();
  const learnProgress = new Progress('learn', options.events);
  const gc = gcTime();
  await Promise.all([send(take(options.events)), waitFor(options.events, learnProgress)]);
  const learnSeconds = (performance.now() - start) / 1000;
  const learnGcShare = gc.stop() / (learnSeconds * 1000);
  const rssAfterLearn = process.memoryUsage().rss;
  const memoryModel = store instanceof EmbeddedStore ? stateBytes(store) : null;
  const checkpoint = store instanceof EmbeddedStore ? await benchCheckpoint(store.state, options.events, join(tmpdir(), `starstream-bench-${process.pid}.ckpt`)) : null;

  // Phase 2: rank, unthrottled (event-loop lag measured meanwhile: probes and /metrics wait that long).
  processor.rankingEnabled = true;
  let before = runner.processedRecords;
  start = performance.now();
  const rankProgress = new Progress('rank', options.rankedEvents);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  await Promise.all([send(take(options.rankedEvents)), waitFor(before + options.rankedEvents, rankProgress, before)]);
  lag.disable();
  const rankSeconds = (performance.now() - start) / 1000;
  const rankRate = options.rankedEvents / rankSeconds;

  // Phase 3: fixed rate at half the ranked throughput.
  const rate = Math.max(10, Math.floor(rankRate / 2));
  const latencyEvents = rate * options.latencySeconds;
  before = runner.processedRecords;
  recording = true;
  await paced(latencyEvents, rate, (n) => send(take(n)));
  await waitFor(before + latencyEvents, new Progress('latency', latencyEvents), before);
  recording = false;

  clearInterval(sampler);
  await runner.stop();
  await log.close();
  const peakRss = Math.max(...memory.map((m) => m.rssMb));
  writeFileSync(
    join(RESULTS_DIR, 'pipeline-memory.svg'),
    lineChartSvg({
      title: 'Pipeline memory during the benchmark (learn → rank → fixed-rate latency)',
      xLabel: 'seconds',
      yLabel: 'MiB',
      series: [
        { name: 'RSS', points: memory.map((m) => [m.t, m.rssMb] as const) },
        { name: 'heap used', points: memory.map((m) => [m.t, m.heapMb] as const) },
      ],
    }),
  );
  const rows: Row[] = [
    { phase: 'raw ceiling: produce → embedded log → decode (no state)', events: options.events, seconds: ceiling.seconds, 'events/s': options.events / ceiling.seconds },
    {
      phase: 'learn (ranking off)',
      events: options.events,
      seconds: learnSeconds,
      'events/s': options.events / learnSeconds,
      'of ceiling': options.events / learnSeconds / (options.events / ceiling.seconds),
      'GC % of wall': 100 * learnGcShare,
      target: '≥ 50,000 events/s; GC ≤ 3%',
    },
    {
      phase: 'rank (candidates + evidence + baseline)',
      events: options.rankedEvents,
      seconds: rankSeconds,
      'events/s': rankRate,
      'event-loop lag p99 ms': lag.percentile(99) / 1e6,
      target: '≥ 2,500 recs/s; lag p99 ≤ 50 ms',
    },
    {
      phase: `latency at ${rate}/s (half of max)`,
      events: latencyEvents,
      'p50 ms': percentile(endToEnd, 50),
      'p99 ms': percentile(endToEnd, 99),
      target: 'p99 ≤ 10 ms',
    },
    {
      phase: 'memory',
      'RSS after learn MiB': rssAfterLearn / 2 ** 20,
      'peak RSS MiB': peakRss,
      'RSS growth, 2nd half of learn MiB': rssGrowth(memory, learnSeconds),
      target: 'RSS after learn ≤ 500 MiB',
    },
    ...(memoryModel ? [memoryModel] : []),
    ...(checkpoint ? [checkpoint] : []),
  ];
  save('pipeline', 'Pipeline on the embedded default (generated stream)', rows, { machine: machine(), options, memory });
  return rows;
}

/**
 * The same events through the pipeline's edges only: encoded and framed, produced to an embedded log, consumed
 * and decoded, no state touched. What the learn phase could reach if learning cost nothing.
 */
async function rawCeiling(config: Config, options: PipelineBenchOptions): Promise<{ seconds: number }> {
  const log = createEmbeddedEventLog(config.eventLog, silentLogger());
  const codecs = createCodecs();
  const framing = createFraming(config.eventLog);
  const topic = 'bench-raw-ceiling';
  try {
    await log.ensureTopics([{ name: topic, partitions: config.eventLog.topics.partitions, replicationFactor: 1 }]);
    const consumer = log.consumer({ groupId: 'bench-raw', topics: [topic], fromBeginning: true, maxBatchRecords: config.pipeline.maxBatchRecords });
    let decoded = 0;
    let allIn: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allIn = resolve));
    const running = consumer.run(async (batch) => {
      for (const record of batch.records) await framing.decode(codecs.interaction, record.value, record.headers);
      decoded += batch.records.length;
      if (decoded >= options.events) allIn();
    });
    const synthetic = { users: options.users, items: options.items, events: options.events, seed: options.seed, durationMs: 90 * 86_400_000 };
    const started = performance.now();
    await produceInteractions(log, topic, generateStream(synthetic), codecs, framing, NO_MALFORMED);
    await done;
    const seconds = (performance.now() - started) / 1000;
    await consumer.stop();
    await running;
    return { seconds };
  } finally {
    await log.close();
  }
}

/** Milliseconds of garbage collection from now until `stop()`. */
function gcTime(): { stop(): number } {
  let ms = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) ms += entry.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop: () => {
      observer.disconnect();
      return ms;
    },
  };
}

/** The memory model, measured: bytes the typed state holds per user, per item and per co-occurrence edge. */
function stateBytes(store: EmbeddedStore): Row {
  const s = store.state;
  const held = s.heldBytes();
  let edges = 0;
  for (const i of s.items.liveSlots()) edges += s.cooccurrence.length(i);
  return {
    phase: 'state after learn (typed columns, capacity)',
    users: s.userCountLive,
    items: s.itemCountLive,
    'co-occurrence edges': edges,
    'bytes/user': held.users / Math.max(1, s.userCountLive),
    'bytes/item': held.items / Math.max(1, s.itemCountLive),
    'bytes/edge': held.cooccurrence / Math.max(1, edges),
  };
}

/** RSS at the end of the learn phase minus RSS at its middle: a flat run is near 0. */
function rssGrowth(memory: readonly { t: number; rssMb: number }[], learnSeconds: number): number {
  const at = (t: number): number => memory.reduce((best, m) => (Math.abs(m.t - t) < Math.abs(best.t - t) ? m : best), memory[0]!).rssMb;
  return memory.length ? at(learnSeconds) - at(learnSeconds / 2) : 0;
}

/** Sends `total` events at `rate`/s in 10 ms slices. */
async function paced(total: number, rate: number, send: (n: number) => Promise<number>): Promise<void> {
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    if (due > sent) {
      sent += await send(due - sent);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sizes of `benchPipelineStores`: small enough that the Qdrant side runs in a few minutes on 2 cores. */
export interface PipelineStoresBenchOptions {
  /** Events learned with ranking off, per store. */
  readonly events: number;
  /** Events then ranked (candidates + evidence + baseline ranking), per store. */
  readonly rankedEvents: number;
  /** A phase stops sending after this many seconds and reports the rate of what it processed. */
  readonly maxPhaseSeconds: number;
  readonly users: number;
  readonly items: number;
  readonly seed: number;
}

export const DEFAULT_PIPELINE_STORES_BENCH: PipelineStoresBenchOptions = {
  events: 100_000,
  rankedEvents: 5_000,
  maxPhaseSeconds: 60,
  users: 10_000,
  items: 10_000,
  seed: 12,
};

/** At most this many records sent ahead of the pipeline, so a capped phase leaves little backlog to drain. */
const IN_FLIGHT = 2_000;

/**
 * The pipeline on the embedded store and on Qdrant (`store.kind = qdrant`, built by `buildStore` as `starstream
 * run` builds it, so whatever the Qdrant store path is), the same workload in the same run, each on a fresh
 * pipeline over the embedded event log: learn (ranking off) then rank, events/s, and the ratio qdrant/embedded.
 * `qdrantUrl` is a server the caller provides (bench/index.ts starts one); its collections are the caller's to
 * drop (prefix `collectionPrefix`).
 */
export async function benchPipelineStores(
  options: PipelineStoresBenchOptions,
  qdrant: { readonly url: string; readonly apiKey?: string; readonly collectionPrefix: string; readonly note: string },
): Promise<Row[]> {
  const measured: Record<'embedded' | 'qdrant', { learn: PhaseResult; rank: PhaseResult }> = {
    embedded: await runStorePhases(options, { kind: 'embedded' }),
    qdrant: await runStorePhases(options, {
      kind: 'qdrant',
      qdrant: { url: qdrant.url, collectionPrefix: qdrant.collectionPrefix, ...(qdrant.apiKey ? { apiKey: qdrant.apiKey } : {}) },
    }),
  };
  const rows: Row[] = [];
  for (const phase of ['learn', 'rank'] as const) {
    const e = measured.embedded[phase];
    const q = measured.qdrant[phase];
    const label = phase === 'learn' ? 'learn (ranking off)' : 'rank (candidates + evidence + baseline)';
    rows.push({ store: 'embedded', phase: label, events: e.events, seconds: e.seconds, 'events/s': e.perSecond, 'qdrant/embedded': '' });
    rows.push({
      store: 'qdrant',
      phase: label,
      events: q.events,
      seconds: q.seconds,
      'events/s': q.perSecond,
      'qdrant/embedded': q.perSecond / e.perSecond,
      note: qdrant.note,
    });
  }
  save('pipeline-stores', 'Pipeline on Qdrant beside the embedded store (same workload, same run)', rows, {
    machine: `${machine()}. Qdrant: ${qdrant.note}`,
    options,
  });
  return rows;
}

interface PhaseResult {
  readonly events: number;
  readonly seconds: number;
  readonly perSecond: number;
}

async function runStorePhases(
  options: PipelineStoresBenchOptions,
  store: Record<string, unknown>,
): Promise<{ learn: PhaseResult; rank: PhaseResult }> {
  const config = loadConfig({ overrides: { ops: { port: 0 }, store } });
  const logger = silentLogger();
  const log = createEmbeddedEventLog(config.eventLog, logger);
  // Built here, not by buildPipeline, so that it can be closed (a write-behind store flushes on close).
  const vectorStore = buildStore(config, logger);
  const pipeline = await buildPipeline(config, { logger, log, store: vectorStore });
  const { runner, processor, topics, framing, engine } = pipeline;
  const synthetic = {
    users: options.users,
    items: options.items,
    events: options.events + options.rankedEvents,
    seed: options.seed,
    durationMs: 90 * 86_400_000,
  };
  const stream = generateStream(synthetic)[Symbol.iterator]();
  const take = (n: number): Interaction[] => {
    const out: Interaction[] = [];
    while (out.length < n) {
      const next = stream.next();
      if (next.done) break;
      out.push(next.value);
    }
    return out;
  };
  /** Sends up to `count` events, at most IN_FLIGHT ahead; stops sending at the cap; waits for what it sent. */
  const phase = async (name: string, count: number): Promise<PhaseResult> => {
    const progress = new Progress(`${String(store['kind'])} ${name}`, count);
    const from = runner.processedRecords;
    const started = performance.now();
    let sent = 0;
    for (;;) {
      const done = runner.processedRecords - from;
      progress.update(done);
      const capped = (performance.now() - started) / 1000 > options.maxPhaseSeconds;
      if (done >= sent && (sent >= count || capped)) break;
      if (!capped && sent < count && sent - done < IN_FLIGHT) {
        const events = take(Math.min(500, count - sent));
        if (events.length === 0) count = sent;
        sent += await produceInteractions(log, topics.interactions, events, engine.codecs, framing, NO_MALFORMED);
      } else {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return { events: sent, seconds, perSecond: sent / seconds };
  };
  try {
    await runner.start();
    await produceItems(log, topics.items, generateCatalogue(synthetic), engine.codecs, framing);
    processor.rankingEnabled = false;
    const learn = await phase('learn', options.events);
    processor.rankingEnabled = true;
    const rank = await phase('rank', options.rankedEvents);
    return { learn, rank };
  } finally {
    await runner.stop();
    await log.close();
    await vectorStore.close();
  }
}

/**
 * Checkpoint cost at the state a run has built (`store.embedded.path` checkpoints, `state/snapshot.ts`): the
 * synchronous copy the stream waits for, encoding, the durable write (temp file, fsync, rename, directory
 * fsync) and a read back into a fresh state, with the file's size. Pass the raw embedded store's state (a
 * pipeline built with `wiring.store = buildStore(config)` keeps it reachable); `path` is where the file goes.
 */
export async function benchCheckpoint(state: CollaborativeState, events: number, path: string): Promise<Row> {
  let t = performance.now();
  const captured = captureSnapshot(state, { meta: { bench: true } });
  const captureMs = performance.now() - t;
  t = performance.now();
  const bytes = encodeSnapshot(captured);
  const encodeMs = performance.now() - t;
  t = performance.now();
  await writeAtomically(path, bytes);
  const writeMs = performance.now() - t;
  t = performance.now();
  const read = await readFile(path);
  restoreSnapshot(new CollaborativeState(state.options), decodeSnapshot(read, path), path);
  const readMs = performance.now() - t;
  return {
    phase: 'checkpoint (embedded snapshot)',
    events,
    users: state.userCountLive,
    items: state.itemCountLive,
    MiB: bytes.length / 2 ** 20,
    'capture ms (stream waits)': captureMs,
    'encode ms': encodeMs,
    'write + fsync ms': writeMs,
    'read + restore ms': readMs,
  };
}
