/**
 * Soak: the full pipeline (baseline ranking on) on a Kafka broker at a steady input rate near its measured
 * capacity for a long run, sampling every few seconds: throughput, end-to-end latency percentiles of the
 * window, consumer lag, RSS and V8 heap. After the run it fits the growth trend of RSS and heap over the
 * second half (after warm-up): a leak shows as a positive slope. Not part of CI.
 *
 *   npm run soak                                  20 minutes at 60 % of the capacity in bench/results/kafka.json
 *   npm run soak -- --minutes 2 --rate 400        a short run at a fixed rate
 *   npm run soak -- --closed --heap-snapshots      a closed world (see below), with a heap snapshot diff
 *   options: --minutes M  --rate R (events/s)  --load F (share of capacity, default 0.6)  --sample S (s, default 5)
 *            --users N --items N (the world; default 20k each)  --closed  --heap-snapshots
 *
 * An open world (the default) keeps introducing users and items, so state, and with it memory, grows for the
 * whole run. `--closed` fixes the world: every user and item exists from the start (no late users, no item
 * releases; 2,000 of each unless given), so after warm-up every bounded structure is full and memory must
 * plateau; growth there is a leak. `--heap-snapshots` writes V8 heap snapshots at the middle and the end of
 * the input (out/soak-{mid,end}.heapsnapshot; each pauses the pipeline for a few seconds, visible as a latency
 * spike) and reports what grew between them by constructor (`bench/heap-diff.ts`).
 *   KAFKA_BROKERS=host:9092 uses that broker; otherwise a local one is started for the run.
 *
 * Writes bench/results/soak.json (every sample), soak.md (summary, samples once a minute) and soak.svg
 * (soak-closed.* for a closed world)
 * (RSS/heap, latency and throughput over time). The producer is open-loop: record i is due at i / rate s,
 * so a pipeline that falls behind shows as lag and latency, not as a lower input rate. Records are generated
 * lazily, so the producer's memory stays flat and what grows is the pipeline's.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { produceItems } from '../src/cli/produce.ts';
import { loadConfig } from '../src/config/load.ts';
import { generateCatalogue, generateStream } from '../src/data/synthetic.ts';
import { lineChartSvg } from '../src/eval/plot.ts';
import type { OutgoingRecord } from '../src/eventlog/port.ts';
import { topicSpecs } from '../src/eventlog/topics.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline } from '../src/main.ts';
import { percentile } from '../src/util/stats.ts';
import { heapGrowth, heapGrowthMarkdown, type HeapGrowth } from './heap-diff.ts';
import { machine, RESULTS_DIR, runAsScript, table, withBrokers, type Row } from './report.ts';

export interface SoakOptions {
  readonly brokers: string;
  readonly rate: number;
  readonly minutes: number;
  /** Seconds between samples. @default 5 */
  readonly sampleSeconds?: number;
  /** Where the rate came from, for the report. */
  readonly rateSource?: string;
  readonly world?: SoakWorld;
  /** Write heap snapshots at the middle and the end of the input to these two files. */
  readonly heapSnapshots?: readonly [string, string];
  /** Progress lines go here. @default stdout */
  readonly log?: (line: string) => void;
}

export interface SoakWorld {
  readonly users: number;
  readonly items: number;
  readonly seed: number;
  /** Closed: no late users, no item releases (the synthetic world's `coldStartShare` and `newItemShare` at 0). */
  readonly closed?: boolean;
}

export interface SoakSample {
  /** Seconds since the start of the run. */
  readonly t: number;
  readonly produced: number;
  readonly processed: number;
  /** Events processed per second over the window. */
  readonly throughput: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly lag: number;
  readonly rssMb: number;
  readonly heapMb: number;
}

export interface SoakSummary {
  readonly targetRate: number;
  readonly achievedInputRate: number;
  readonly achievedThroughput: number;
  readonly produced: number;
  readonly processed: number;
  readonly recommendations: number;
  readonly deadLetters: number;
  readonly stageFailures: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly maxLag: number;
  readonly rssStartMb: number;
  readonly rssEndMb: number;
  readonly rssMaxMb: number;
  readonly heapEndMb: number;
  /** Least-squares slope over the second half of the run (from a minute after the middle heap snapshot, when taken), MB per minute. */
  readonly rssSlopeMbPerMin: number;
  /** Slope of the heap's per-minute floor over the same span, MB per minute. */
  readonly heapSlopeMbPerMin: number;
  readonly p99SlopeMsPerMin: number;
  /** Consumer lag slope over the second half, records per minute: positive = the rate is above capacity. */
  readonly lagSlopePerMin: number;
  readonly verdict: string;
}

const TICK_MS = 5;
const SEND_CHUNK = 1_000;
/** A slope below this (MB/min) over the second half is "flat": noise of GC and allocator, not a leak. */
const FLAT_MB_PER_MIN = 1;

export async function soak(options: SoakOptions): Promise<{ summary: SoakSummary; samples: SoakSample[] }> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const sampleMs = (options.sampleSeconds ?? 5) * 1000;
  const durationMs = options.minutes * 60_000;
  const total = Math.ceil((options.rate * durationMs) / 1000);
  const world = options.world ?? { users: 20_000, items: 20_000, seed: 5 };
  const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const config = loadConfig({
    overrides: {
      eventLog: { kind: 'kafka', kafka: { brokers: options.brokers.split(',') }, topics: { prefix: `soak-${suffix}.` } },
      pipeline: { groupId: `soak-${suffix}`, rankingEnabled: true },
    },
  });

  let windowLatencies: number[] = [];
  const allLatencies: number[] = [];
  let recommendations = 0;
  let deadLetters = 0;
  let stageFailures = 0;
  const pipeline = await buildPipeline(config, {
    logger: silentLogger(),
    registry: new Registry(),
    observer: {
      endToEndLatency: (s) => {
        windowLatencies.push(s * 1000);
        // A bounded reservoir for the whole-run percentiles (every 8th sample is plenty at these rates).
        if (allLatencies.length < 2_000_000 && Math.random() < 0.125) allLatencies.push(s * 1000);
      },
      recommendationPublished: () => void recommendations++,
      deadLettered: () => void deadLetters++,
      stageFailed: () => void stageFailures++,
    },
  });
  const { runner, log: eventLog, topics, engine, framing } = pipeline;
  const producer = eventLog.producer();
  const samples: SoakSample[] = [];
  try {
    await eventLog.ensureTopics(topicSpecs(config));
    const synthetic = { users: world.users, items: world.items, seed: world.seed, events: total, ...(world.closed ? { coldStartShare: 0, newItemShare: 0 } : {}) };
    await produceItems(eventLog, topics.items, generateCatalogue(synthetic), engine.codecs, framing);
    await runner.start();
    log(`soak: ${options.minutes} min at ${options.rate} events/s (${options.rateSource ?? 'given'}), ${total.toLocaleString('en-US')} events, sampling every ${sampleMs / 1000} s`);

    const events = generateStream(synthetic);
    let sent = 0;
    const started = performance.now();
    let lastSample = { t: started, processed: 0 };
    const takeSample = async (): Promise<void> => {
      const now = performance.now();
      const processed = runner.processedRecords;
      const lag = await runner.lag().catch(() => Number.NaN);
      const mem = process.memoryUsage();
      const w = windowLatencies;
      windowLatencies = [];
      const sample: SoakSample = {
        t: Math.round((now - started) / 100) / 10,
        produced: sent,
        processed,
        throughput: Math.round((processed - lastSample.processed) / ((now - lastSample.t) / 1000)),
        p50Ms: round(percentile(w, 50)),
        p95Ms: round(percentile(w, 95)),
        p99Ms: round(percentile(w, 99)),
        maxMs: round(w.reduce((a, b) => Math.max(a, b), 0)),
        lag,
        rssMb: round(mem.rss / 2 ** 20),
        heapMb: round(mem.heapUsed / 2 ** 20),
      };
      samples.push(sample);
      lastSample = { t: now, processed };
      const elapsed = (now - started) / 1000;
      const eta = Math.max(0, durationMs / 1000 - elapsed);
      log(
        `soak ${clock(elapsed)} / ${clock(durationMs / 1000)}  in ${Math.round(sent / Math.max(elapsed, 1e-3))}/s  out ${sample.throughput}/s  ` +
          `p50 ${sample.p50Ms} ms  p99 ${sample.p99Ms} ms  lag ${sample.lag}  rss ${sample.rssMb} MB  heap ${sample.heapMb} MB  ETA ${clock(eta)}`,
      );
    };
    let nextSampleAt = started + sampleMs;
    const snapshots = [...(options.heapSnapshots ?? [])];
    let midSnapshotT: number | null = null;
    const snapshotAt = [Math.floor(total / 2), total];
    while (sent < total) {
      const now = performance.now();
      if (snapshots.length === 2 && sent >= snapshotAt[0]!) {
        writeSnapshot(snapshots.shift()!, log);
        midSnapshotT = (performance.now() - started) / 1000;
      }
      if (now >= nextSampleAt) {
        nextSampleAt += sampleMs;
        await takeSample();
        continue;
      }
      const due = Math.min(total, Math.floor(((now - started) / 1000) * options.rate) + 1);
      if (due <= sent) {
        await new Promise((r) => setTimeout(r, TICK_MS));
        continue;
      }
      const batch: OutgoingRecord[] = [];
      const upTo = Math.min(due, sent + SEND_CHUNK);
      while (sent + batch.length < upTo) {
        const next = events.next();
        if (next.done) throw new Error(`the synthetic stream ended after ${sent + batch.length} of ${total} events`);
        const framed = await framing.encode(engine.codecs.interaction, next.value, topics.interactions);
        batch.push({ topic: topics.interactions, key: next.value.userId, value: framed.value, headers: framed.headers });
      }
      await producer.send(batch);
      sent = upTo;
    }
    const inputSeconds = (performance.now() - started) / 1000;
    // Drain: the pipeline finishes what was produced (bounded, so a wedged pipeline fails the soak).
    const drainDeadline = Date.now() + 120_000;
    while (runner.processedRecords < total) {
      if (Date.now() > drainDeadline) throw new Error(`the pipeline processed ${runner.processedRecords}/${total} events within 120 s of the end of input`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await takeSample();
    if (snapshots.length > 0) writeSnapshot(snapshots.at(-1)!, log);
    const runSeconds = (performance.now() - started) / 1000;
    return { summary: summarize(options, samples, { total, inputSeconds, runSeconds, recommendations, deadLetters, stageFailures, allLatencies, midSnapshotT }), samples };
  } finally {
    await producer.close().catch(() => undefined);
    await runner.stop();
    await eventLog.close();
    await engine.store.close();
  }
}

function writeSnapshot(file: string, log: (line: string) => void): void {
  const t = performance.now();
  // (V8 collects garbage before it writes a snapshot, so it holds what is alive.)
  writeHeapSnapshot(file);
  log(`soak: heap snapshot ${file} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
}

function summarize(
  options: SoakOptions,
  samples: readonly SoakSample[],
  run: {
    total: number;
    inputSeconds: number;
    runSeconds: number;
    recommendations: number;
    deadLetters: number;
    stageFailures: number;
    allLatencies: number[];
    /** Seconds into the run of the middle heap snapshot; null without snapshots. */
    midSnapshotT: number | null;
  },
): SoakSummary {
  // The trend is fitted over the second half; a heap snapshot inflates RSS for a while (V8 allocates to
  // write it), so with snapshots the fit starts a minute after the middle one.
  const from = run.midSnapshotT === null ? samples[Math.floor(samples.length / 2)]?.t ?? 0 : run.midSnapshotT + 60;
  const second = samples.filter((s) => s.t >= from);
  const perMin = (pick: (s: SoakSample) => number): number => round(slope(second.map((s) => [s.t / 60, pick(s)] as const)), 3);
  const rss = samples.map((s) => s.rssMb);
  const rssSlope = perMin((s) => s.rssMb);
  // Heap used is a sawtooth between collections; its floor (the lowest sample of each minute, what is left
  // after a collection) is what a leak raises.
  const heapSlope = round(slope(minuteFloors(second, (s) => s.heapMb)), 3);
  const errors = run.deadLetters + run.stageFailures + (run.recommendations === run.total ? 0 : 1);
  const growing = rssSlope > FLAT_MB_PER_MIN || heapSlope > FLAT_MB_PER_MIN;
  const lagSlope = perMin((s) => (Number.isFinite(s.lag) ? s.lag : 0));
  // Lag that keeps growing means the input is above what the pipeline sustains here: memory then grows with
  // the backlog, so the memory verdict says nothing about leaks until the rate is lowered.
  const overloaded = lagSlope > options.rate * 60 * 0.02;
  const verdict =
    (overloaded ? `OVERLOADED (lag ${signed(Math.round(lagSlope))} records/min: lower --rate; memory figures include the backlog); ` : '') +
    `${growing ? 'GROWTH' : 'flat'}: RSS ${signed(rssSlope)} MB/min, heap floor ${signed(heapSlope)} MB/min over the second half (flat below ${FLAT_MB_PER_MIN} MB/min); ` +
    `${errors === 0 ? 'no errors' : `${run.deadLetters} dead letters, ${run.stageFailures} stage failures, ${run.recommendations}/${run.total} answered`}`;
  return {
    targetRate: options.rate,
    achievedInputRate: Math.round(run.total / run.inputSeconds),
    achievedThroughput: Math.round(run.total / run.runSeconds),
    produced: run.total,
    processed: samples.at(-1)?.processed ?? 0,
    recommendations: run.recommendations,
    deadLetters: run.deadLetters,
    stageFailures: run.stageFailures,
    p50Ms: round(percentile(run.allLatencies, 50)),
    p99Ms: round(percentile(run.allLatencies, 99)),
    maxMs: round(samples.reduce((a, s) => Math.max(a, s.maxMs), 0)),
    maxLag: samples.reduce((a, s) => Math.max(a, Number.isFinite(s.lag) ? s.lag : 0), 0),
    rssStartMb: rss[0] ?? 0,
    rssEndMb: rss.at(-1) ?? 0,
    rssMaxMb: Math.max(0, ...rss),
    heapEndMb: samples.at(-1)?.heapMb ?? 0,
    rssSlopeMbPerMin: rssSlope,
    heapSlopeMbPerMin: heapSlope,
    p99SlopeMsPerMin: perMin((s) => (Number.isFinite(s.p99Ms) ? s.p99Ms : 0)),
    lagSlopePerMin: Math.round(lagSlope),
    verdict,
  };
}

/** [minute, lowest value that minute] over the samples. */
function minuteFloors(samples: readonly SoakSample[], pick: (s: SoakSample) => number): [number, number][] {
  const floors = new Map<number, number>();
  for (const s of samples) {
    const m = Math.floor(s.t / 60);
    floors.set(m, Math.min(floors.get(m) ?? Infinity, pick(s)));
  }
  return [...floors].map(([m, v]) => [m + 0.5, v]);
}

/** Least-squares slope of y over x; 0 for fewer than two points. */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : ''}${x}`;
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** Three stacked panels in one SVG: memory, latency, throughput, each over minutes of the run. */
export function soakSvg(samples: readonly SoakSample[], title: string): string {
  const minutes = (pick: (s: SoakSample) => number) => samples.filter((s) => Number.isFinite(pick(s))).map((s) => [s.t / 60, pick(s)] as const);
  const panels = [
    lineChartSvg({ title: `${title}: memory`, xLabel: 'minutes', yLabel: 'MB', series: [{ name: 'RSS', points: minutes((s) => s.rssMb) }, { name: 'V8 heap used', points: minutes((s) => s.heapMb) }] }),
    lineChartSvg({ title: 'end-to-end latency (per sample window)', xLabel: 'minutes', yLabel: 'ms', series: [{ name: 'p50', points: minutes((s) => s.p50Ms) }, { name: 'p99', points: minutes((s) => s.p99Ms) }] }),
    lineChartSvg({ title: 'throughput and lag', xLabel: 'minutes', yLabel: 'events/s, records', series: [{ name: 'processed/s', points: minutes((s) => s.throughput) }, { name: 'consumer lag', points: minutes((s) => s.lag) }] }),
  ];
  // Each chart's contents, shifted into its band (plain groups: every SVG renderer draws those).
  const height = 360;
  const inner = panels
    .map((svg, i) => {
      const body = svg.replace(/^<svg[^>]*>\n?/, '').replace(/<\/svg>\n?$/, '').replace('width="100%" height="100%"', `width="760" height="${height}"`);
      return `<g transform="translate(0,${i * height})">\n${body}</g>\n`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="${height * panels.length}" font-family="sans-serif" font-size="11">\n${inner}</svg>\n`;
}

function save(options: SoakOptions, summary: SoakSummary, samples: readonly SoakSample[], growth: HeapGrowth | null): void {
  const measuredAt = new Date().toISOString();
  const w = options.world;
  const worldText = w ? `${w.closed ? 'closed' : 'open'} world of ${w.users.toLocaleString('en-US')} users × ${w.items.toLocaleString('en-US')} items` : 'open world';
  const title = `Soak: ${options.minutes} min at ${options.rate} events/s on Kafka, ${worldText}`;
  const base = w?.closed ? 'soak-closed' : 'soak';
  writeFileSync(
    join(RESULTS_DIR, `${base}.json`),
    `${JSON.stringify({ title, measuredAt, machine: machine(), brokers: options.brokers, rateSource: options.rateSource, world: w ?? null, summary, heapGrowth: growth, samples }, null, 2)}\n`,
  );
  const perMinute: Row[] = samples
    .filter((s, i) => i === samples.length - 1 || Math.floor(s.t / 60) !== Math.floor((samples[i + 1]?.t ?? 0) / 60))
    .map((s) => ({ 'min': round(s.t / 60), 'out/s': s.throughput, 'p50 ms': s.p50Ms, 'p99 ms': s.p99Ms, lag: s.lag, 'RSS MB': s.rssMb, 'heap MB': s.heapMb }));
  const summaryRows: Row[] = Object.entries(summary).map(([k, v]) => ({ figure: k, value: v }));
  writeFileSync(
    join(RESULTS_DIR, `${base}.md`),
    `# ${title}\n\nMeasured ${measuredAt}. ${machine()}. Rate: ${options.rateSource ?? 'given'}.\n\n**${summary.verdict}**\n\n${table(summaryRows)}\n` +
      `One sample per minute (all in ${base}.json):\n\n${table(perMinute)}\n![soak](${base}.svg)\n` +
      (growth ? `\n${heapGrowthMarkdown(growth)}` : ''),
  );
  writeFileSync(join(RESULTS_DIR, `${base}.svg`), soakSvg(samples, title));
  process.stdout.write(`\n${table(summaryRows)}\n${summary.verdict}\nsaved bench/results/${base}.{json,md,svg}\n`);
}

/** 60 % (or `load`) of the baseline-ranking capacity the Kafka suite measured, else 400 events/s. */
function defaultRate(load: number): { rate: number; source: string } {
  const file = join(RESULTS_DIR, 'kafka.json');
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { measuredAt?: string; rows?: Row[] };
    const row = saved.rows?.find((r) => r.run === 'pipeline, baseline ranking');
    const capacity = Number(row?.['events/s']);
    if (Number.isFinite(capacity) && capacity > 0) {
      return { rate: Math.round(capacity * load), source: `${Math.round(load * 100)} % of the ${Math.round(capacity)} events/s capacity in bench/results/kafka.json (${saved.measuredAt ?? 'undated'})` };
    }
  }
  return { rate: 400, source: 'default 400 events/s (no capacity figure in bench/results/kafka.json)' };
}

runAsScript(import.meta.url, async () => {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      load: { type: 'string' },
      sample: { type: 'string' },
      users: { type: 'string' },
      items: { type: 'string' },
      closed: { type: 'boolean', default: false },
      'heap-snapshots': { type: 'boolean', default: false },
    },
  });
  const closed = values.closed ?? false;
  const worldSize = closed ? 2_000 : 20_000;
  const world: SoakWorld = { users: Number(values.users ?? worldSize), items: Number(values.items ?? worldSize), seed: 5, closed };
  const minutes = Number(values.minutes ?? 20);
  const load = Number(values.load ?? 0.6);
  const given = values.rate === undefined ? null : Number(values.rate);
  for (const [name, v] of [['--minutes', minutes], ['--load', load], ['--rate', given ?? 1], ['--users', world.users], ['--items', world.items]] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  }
  const { rate, source } = given === null ? defaultRate(load) : { rate: given, source: `--rate ${given}` };
  await withBrokers(
    async (brokers) => {
      const heapSnapshots = values['heap-snapshots'] ? (['out/soak-mid.heapsnapshot', 'out/soak-end.heapsnapshot'] as const) : undefined;
      if (heapSnapshots) mkdirSync('out', { recursive: true });
      const options: SoakOptions = { brokers, rate, minutes, world, heapSnapshots, rateSource: source, sampleSeconds: Number(values.sample ?? 5) };
      const { summary, samples } = await soak(options);
      const growth = heapSnapshots ? await heapGrowth(heapSnapshots[0], heapSnapshots[1]) : null;
      save(options, summary, samples, growth);
    },
    { quickJit: false, heapMb: 1024 },
  );
});
