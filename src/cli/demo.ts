import { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Interaction, Item } from '../domain/events.ts';
import { generateCatalogue, generateStream } from '../data/synthetic.ts';
import { OnlineHitRate } from '../eval/online.ts';
import type { Logger } from '../logging/logger.ts';
import { buildPipeline } from '../main.ts';
import { startPipelineOpsServer, type PipelineOpsServer } from '../ops/service.ts';
import { produceInteractions, produceItems, type MalformedMix } from './produce.ts';
import { percentile } from '../util/stats.ts';
import { refreshGauges } from './gauges.ts';
import { BoundedOutputFile, DEFAULT_OUT_LIMIT_BYTES, type OutputFileSummary } from './output-file.ts';
import { Progress } from './progress.ts';
import { startSideStream, type SideStreamSummary } from './side-stream.ts';
import type { LanguageModel } from '../teacher/llm/port.ts';

/**
 * `npm start` / `starstream demo`: the whole pipeline on its embedded default over a generated stream.
 * Produces a synthetic catalogue and stream (with a few malformed records, to show the DLQ) into the
 * in-process log, runs the pipeline against it, serves `/metrics` and the `/v1/` API, writes the
 * recommendations topic to a JSON-lines file, and ends with a summary; with `--serve` it keeps the pipeline and
 * the API up after the stream (`POST /v1/events` feeds the same pipeline) until SIGINT or SIGTERM.
 */

export interface DemoOptions {
  readonly events: number;
  readonly users: number;
  readonly items: number;
  readonly seed: number;
  readonly out: string;
  readonly outLimitBytes?: number;
  readonly malformed: MalformedMix;
  readonly teacher?: StreamInput['teacher'];
  readonly serve?: ServeMode;
}

/** Where the API of an in-process run answers, and what the stream ended with (for the printed examples). */
export interface LiveApi {
  readonly url: string;
  readonly token: string | undefined;
  /** The stream's last event, null when it had none. */
  readonly lastEvent: { readonly itemId: string; readonly timestampMs: number } | null;
}

/** Keeps the pipeline and its API running after the stream. */
export interface ServeMode {
  /** Told once the stream is processed (print the summary and where the API answers). */
  readonly onServing: (summary: DemoSummary, api: LiveApi) => void;
  /** Called after `onServing`: everything stays up until it settles (a signal), then shuts down as without `serve`. */
  readonly until: () => Promise<unknown>;
}

/** What an in-process run consumes: a catalogue and a time-ordered stream. */
export interface StreamInput {
  readonly items: readonly Item[];
  readonly events: Iterable<Interaction>;
  /** Events in `events`, for progress; null when unknown. */
  readonly total: number | null;
  readonly malformed: MalformedMix;
  readonly out: string;
  /** Bytes per recommendations file before it rotates (`--out-limit`); 0 = unbounded. @default DEFAULT_OUT_LIMIT_BYTES */
  readonly outLimitBytes?: number;
  /** Runs the MARS teacher and the labeller beside the pipeline (the side stream); see `side-stream.ts`. */
  readonly teacher?: { readonly model?: LanguageModel; readonly drainTimeoutMs: number };
  readonly serve?: ServeMode;
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
  /** The recommendations file (bounded by `--out-limit`), as it stood when the stream was processed. */
  readonly output?: OutputFileSummary;
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
    ...(options.outLimitBytes !== undefined ? { outLimitBytes: options.outLimitBytes } : {}),
    ...(options.teacher ? { teacher: options.teacher } : {}),
    ...(options.serve ? { serve: options.serve } : {}),
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
  // The stream's own events; what `POST /v1/events` adds while serving is not the stream's progress or hit rate.
  let streaming = true;
  processor.onRanked = (ranked) => {
    pipelineListener?.(ranked);
    if (!streaming) return;
    hits.observe(ranked);
    progress.update(runner.processedRecords, `recs ${latencies.length.toLocaleString('en-US')}  hit@10 ${hits.servedRate.toFixed(3)}`);
  };
  // A run that ends on its own does not need the configured port: when another process holds it (a `run`
  // beside it, a second replay), any free port does, and the line below says which.
  const server = await startPipelineOpsServer(config, pipeline, logger).catch((err: unknown): Promise<PipelineOpsServer> => {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    process.stderr.write(`port ${config.ops.port} is in use; serving metrics on a free port instead\n`);
    return startPipelineOpsServer({ ...config, ops: { ...config.ops, port: 0 } }, pipeline, logger);
  });
  process.stderr.write(`metrics on ${server.url}/metrics\n`);

  const file = await BoundedOutputFile.open(input.out, input.outLimitBytes ?? DEFAULT_OUT_LIMIT_BYTES);
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
      await file.writeLine(JSON.stringify(rec));
    }
  });

  const side = input.teacher
    ? await startSideStream(config, logger, pipeline, { registry, drainTimeoutMs: input.teacher.drainTimeoutMs, ...(input.teacher.model ? { model: input.teacher.model } : {}) })
    : null;
  await runner.start();
  const gauges = refreshGauges(pipeline, GAUGE_REFRESH_MS);
  const started = performance.now();
  let lastEvent: LiveApi['lastEvent'] = null;
  function* tracked(events: Iterable<Interaction>): Generator<Interaction> {
    for (const event of events) {
      if (!lastEvent || event.timestampMs >= lastEvent.timestampMs) lastEvent = event;
      yield event;
    }
  }
  await produceItems(log, topics.items, input.items, engine.codecs, framing);
  const total = await produceInteractions(log, topics.interactions, tracked(input.events), engine.codecs, framing, input.malformed);
  while (runner.processedRecords < total) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - started) / 1000;
  streaming = false;
  progress.finish(runner.processedRecords);
  const sideStream = await side?.finish();
  // The sink may still be catching up with the last recommendations: let it drain before counting them.
  await drained(sink);
  const summary: DemoSummary = {
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
    output: file.summary(),
    ...(sideStream ? { sideStream } : {}),
  };
  if (input.serve) {
    const lastSeen: LiveApi['lastEvent'] = lastEvent;
    input.serve.onServing(summary, { url: server.url, token: config.ops.apiToken, lastEvent: lastSeen });
    await input.serve.until();
  }

  await gauges.stop();
  await runner.stop();
  await drained(sink);
  const counts = await pipeline.engine.store.counts();
  pipeline.metrics.setStoreSize(counts.users, counts.items);
  await pipeline.scorers.close();
  await sink.stop();
  await sinking;
  await file.close();
  await log.close();
  await server.close();
  logger.info({ users: counts.users, items: counts.items }, 'store size');
  return summary;
}

/** Waits (10 s at most) until `sink` has read everything on its topics. */
async function drained(sink: { lag(): Promise<readonly { lag: number }[]> }): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await sink.lag()).some((p) => p.lag > 0)) await new Promise((r) => setTimeout(r, 20));
}
