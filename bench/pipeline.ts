import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import type { Interaction } from '../src/domain/events.ts';
import { generateCatalogue, generateStream } from '../src/data/synthetic.ts';
import { lineChartSvg } from '../src/eval/plot.ts';
import { createEmbeddedEventLog } from '../src/eventlog/embedded/log.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline } from '../src/main.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from '../src/cli/produce.ts';
import { Progress } from '../src/cli/progress.ts';
import { percentile } from '../src/util/stats.ts';
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
  const log = createEmbeddedEventLog(config.eventLog, logger);
  const endToEnd: number[] = [];
  let recording = false;
  const pipeline = await buildPipeline(config, {
    logger,
    log,
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
  await Promise.all([send(take(options.events)), waitFor(options.events, learnProgress)]);
  const learnSeconds = (performance.now() - start) / 1000;
  const rssAfterLearn = process.memoryUsage().rss;

  // Phase 2: rank, unthrottled.
  processor.rankingEnabled = true;
  let before = runner.processedRecords;
  start = performance.now();
  const rankProgress = new Progress('rank', options.rankedEvents);
  await Promise.all([send(take(options.rankedEvents)), waitFor(before + options.rankedEvents, rankProgress, before)]);
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
    { phase: 'learn (ranking off)', events: options.events, seconds: learnSeconds, 'events/s': options.events / learnSeconds, target: '≥ 20,000 events/s' },
    { phase: 'rank (candidates + evidence + baseline)', events: options.rankedEvents, seconds: rankSeconds, 'events/s': rankRate, target: '≥ 1,000 recs/s' },
    {
      phase: `latency at ${rate}/s (half of max)`,
      events: latencyEvents,
      'p50 ms': percentile(endToEnd, 50),
      'p99 ms': percentile(endToEnd, 99),
      target: 'p99 < 20 ms',
    },
    { phase: 'memory', 'RSS after learn MiB': rssAfterLearn / 2 ** 20, 'peak RSS MiB': peakRss, 'RSS growth, 2nd half of learn MiB': rssGrowth(memory, learnSeconds) },
  ];
  save('pipeline', 'Pipeline on the embedded default (generated stream)', rows, { machine: machine(), options, memory });
  return rows;
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
