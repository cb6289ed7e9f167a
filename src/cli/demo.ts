import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Interaction, Item } from '../domain/events.ts';
import { generateCatalogue, generateStream } from '../data/synthetic.ts';
import { OnlineHitRate } from '../eval/online.ts';
import type { Logger } from '../logging/logger.ts';
import { buildPipeline } from '../main.ts';
import { startOpsServer } from '../ops/server.ts';
import { produceInteractions, produceItems, type MalformedMix } from './produce.ts';
import { percentile } from '../util/stats.ts';
import { refreshGauges } from './gauges.ts';
import { Progress } from './progress.ts';
import { startSideStream, type SideStreamSummary } from './side-stream.ts';
import type { LanguageModel } from '../teacher/llm/port.ts';

/**
 * `npm start` / `starstream demo`: the whole pipeline on its embedded default over a generated stream.
 * Produces a synthetic catalogue and stream (with a few malformed records, to show the DLQ) into the
 * in-process log, runs the pipeline against it, serves `/metrics`, writes the recommendations topic to a
 * JSON-lines file, and ends with a summary.
 */

export interface DemoOptions {
  readonly events: number;
  readonly users: number;
  readonly items: number;
  readonly seed: number;
  readonly out: string;
  readonly malformed: MalformedMix;
  readonly teacher?: StreamInput['teacher'];
}

/** What an in-process run consumes: a catalogue and a time-ordered stream. */
export interface StreamInput {
  readonly items: readonly Item[];
  readonly events: Iterable<Interaction>;
  /** Events in `events`, for progress; null when unknown. */
  readonly total: number | null;
  readonly malformed: MalformedMix;
  readonly out: string;
  /** Runs the MARS teacher and the labeller beside the pipeline (the side stream); see `side-stream.ts`. */
  readonly teacher?: { readonly model?: LanguageModel; readonly drainTimeoutMs: number };
}

export interface DemoSummary {
  readonly events: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  readonly recommendations: number;
  readonly deadLetters: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly hitRate: number;
  readonly popularityHitRate: number;
  readonly hitCases: number;
  readonly sideStream?: SideStreamSummary;
}

/** How often the store-size and lag gauges are refreshed during an in-process run. */
const GAUGE_REFRESH_MS = 2_000;

export function demo(config: Config, logger: Logger, options: DemoOptions): Promise<DemoSummary> {
  const synthetic = { users: options.users, items: options.items, events: options.events, seed: options.seed };
  return runInProcess(config, logger, {
    items: generateCatalogue(synthetic),
    events: generateStream(synthetic),
    total: options.events,
    malformed: options.malformed,
    out: options.out,
    ...(options.teacher ? { teacher: options.teacher } : {}),
  });
}

/**
 * Runs the pipeline in this process over `input`, produced into the configured (normally embedded) log
 * as a real producer would, and reports the run. Used by `demo` and by `replay` on the embedded default.
 */
export async function runInProcess(config: Config, logger: Logger, input: StreamInput): Promise<DemoSummary> {
  const registry = new Registry();
  const pipeline = await buildPipeline(config, { logger, registry });
  const { runner, processor, log, topics, framing, engine } = pipeline;
  const hits = new OnlineHitRate(10);
  const progress = new Progress('events', input.total);
  const pipelineListener = processor.onRanked;
  processor.onRanked = (ranked) => {
    pipelineListener?.(ranked);
    hits.observe(ranked);
    progress.update(runner.processedRecords, `recs ${latencies.length.toLocaleString('en-US')}  hit@10 ${hits.servedRate.toFixed(3)}`);
  };
  const readiness = async () => {
    const health = runner.health();
    return { ready: health.ready, checks: { consuming: health.ready }, reasons: health.reasons };
  };
  // A run that ends on its own does not need the configured port: when another process holds it (a `run`
  // beside it, a second replay), any free port does, and the line below says which.
  const server = await startOpsServer({ host: config.ops.host, port: config.ops.port, registry, readiness }).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    process.stderr.write(`port ${config.ops.port} is in use; serving metrics on a free port instead\n`);
    return startOpsServer({ host: config.ops.host, port: 0, registry, readiness });
  });
  process.stderr.write(`metrics on ${server.url}/metrics\n`);

  await mkdir(dirname(input.out), { recursive: true });
  const file = createWriteStream(input.out);
  const latencies: number[] = [];
  let deadLetters = 0;
  const sink = log.consumer({ groupId: 'demo-sink', topics: [topics.recommendations, topics.deadLetters], fromBeginning: true, maxBatchRecords: 1_000 });
  const sinking = sink.run(async (batch) => {
    if (batch.topic === topics.deadLetters) {
      deadLetters += batch.records.length;
      return;
    }
    for (const record of batch.records) {
      const rec = await framing.decode(engine.codecs.recommendation, record.value, record.headers);
      latencies.push(rec.pipelineLatencyMs);
      file.write(`${JSON.stringify(rec)}\n`);
    }
  });

  const side = input.teacher
    ? await startSideStream(config, logger, pipeline, { registry, drainTimeoutMs: input.teacher.drainTimeoutMs, ...(input.teacher.model ? { model: input.teacher.model } : {}) })
    : null;
  await runner.start();
  const gauges = refreshGauges(pipeline, GAUGE_REFRESH_MS);
  const started = performance.now();
  await produceItems(log, topics.items, input.items, engine.codecs, framing);
  const produced = produceInteractions(log, topics.interactions, input.events, engine.codecs, framing, input.malformed);
  const total = await produced;
  while (runner.processedRecords < total) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - started) / 1000;
  progress.finish(runner.processedRecords);
  const sideStream = await side?.finish();

  await gauges.stop();
  await runner.stop();
  // The sink may still be catching up with the last recommendations: let it drain before stopping it.
  const drainDeadline = Date.now() + 10_000;
  while (Date.now() < drainDeadline && (await sink.lag()).some((p) => p.lag > 0)) await new Promise((r) => setTimeout(r, 20));
  const counts = await pipeline.engine.store.counts();
  pipeline.metrics.setStoreSize(counts.users, counts.items);
  await pipeline.scorers.close();
  await sink.stop();
  await sinking;
  await new Promise<void>((resolve) => file.end(resolve));
  await log.close();
  await server.close();
  logger.info({ users: counts.users, items: counts.items }, 'store size');
  return {
    events: total,
    seconds,
    eventsPerSecond: total / seconds,
    recommendations: latencies.length,
    deadLetters,
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    hitRate: hits.servedRate,
    popularityHitRate: hits.popularRate,
    hitCases: hits.cases,
    ...(sideStream ? { sideStream } : {}),
  };
}
