/**
 * End-to-end latency of the full pipeline (baseline ranking on) on a Kafka broker at a fixed input rate.
 *
 * A paced producer sends interactions on a schedule (record i is due at i / rate seconds; records that fell
 * behind are sent together as soon as the producer can: an open loop, so a slow pipeline shows up as latency,
 * not as a lower rate). The pipeline is `buildPipeline` with the default config apart from the topic prefix and
 * group; its `endToEndLatency` observer gives, per record, the time from the record's timestamp (set by the
 * producer as it appends it) to the acknowledgement of the batch's outputs. Records acknowledged during the
 * first `warmupSeconds` are not recorded (JIT, connections, the first fetches).
 *
 *   node --import tsx bench/kafka-latency.ts [rate] [seconds]   (KAFKA_BROKERS, or a local broker for the run)
 */
import { Registry } from 'prom-client';
import { produceItems } from '../src/cli/produce.ts';
import { loadConfig } from '../src/config/load.ts';
import { generateCatalogue, generateStream } from '../src/data/synthetic.ts';
import type { OutgoingRecord } from '../src/eventlog/port.ts';
import { topicSpecs } from '../src/eventlog/topics.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline } from '../src/main.ts';
import { percentile } from '../src/util/stats.ts';
import { runAsScript, withBrokers } from './report.ts';

export interface KafkaLatencyOptions {
  /** Bootstrap servers, comma-separated. */
  readonly brokers: string;
  /** Input rate, events per second. */
  readonly rate: number;
  /** Recorded duration, after the warm-up. */
  readonly seconds: number;
  /** Unrecorded lead-in at the same rate. @default 3 */
  readonly warmupSeconds?: number;
  /** The synthetic world. @default { users: 20_000, items: 20_000, seed: 5 } (as the suite's throughput runs) */
  readonly world?: { readonly users: number; readonly items: number; readonly seed: number };
  /** Give up waiting for the pipeline to finish after the producer did, ms. @default 120_000 */
  readonly drainTimeoutMs?: number;
}

export interface KafkaLatencyResult {
  /** The rate asked for and the rate the producer achieved over the recorded window, events/s. */
  readonly targetRate: number;
  readonly achievedRate: number;
  /** Events whose latency was recorded. */
  readonly events: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

const TICK_MS = 5;

export async function benchKafkaLatency(options: KafkaLatencyOptions): Promise<KafkaLatencyResult> {
  const warmup = options.warmupSeconds ?? 3;
  const world = options.world ?? { users: 20_000, items: 20_000, seed: 5 };
  const warmupEvents = Math.round(options.rate * warmup);
  const recordedEvents = Math.max(1, Math.round(options.rate * options.seconds));
  const total = warmupEvents + recordedEvents;
  const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const config = loadConfig({
    overrides: {
      eventLog: {
        kind: 'kafka',
        kafka: { brokers: options.brokers.split(',') },
        topics: { prefix: `bench-lat-${suffix}.` },
      },
      pipeline: { groupId: `bench-lat-${suffix}`, rankingEnabled: true },
    },
  });
  const latenciesMs: number[] = [];
  let recording = false;
  const pipeline = await buildPipeline(config, {
    logger: silentLogger(),
    registry: new Registry(),
    observer: { endToEndLatency: (s) => void (recording && latenciesMs.push(s * 1000)) },
  });
  const { runner, log, topics, engine, framing } = pipeline;
  const producer = log.producer();
  try {
    await log.ensureTopics(topicSpecs(config));
    const synthetic = { ...world, events: total };
    await produceItems(log, topics.items, generateCatalogue(synthetic), engine.codecs, framing);
    await runner.start();

    const records: OutgoingRecord[] = [];
    for (const event of generateStream(synthetic)) {
      const framed = await framing.encode(engine.codecs.interaction, event, topics.interactions);
      records.push({
        topic: topics.interactions,
        key: event.userId,
        value: framed.value,
        headers: framed.headers,
      });
    }
    // Sent so far; record i is due at i / rate s after the start.
    let sent = 0;
    let windowStart = 0;
    let windowEnd = 0;
    const started = performance.now();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * options.rate) + 1);
      if (due > sent) {
        // The warm-up boundary is never inside one send, so every recorded event was sent while recording.
        const upTo = sent < warmupEvents ? Math.min(due, warmupEvents) : due;
        if (sent === warmupEvents && !recording) {
          recording = true;
          windowStart = performance.now();
        }
        await producer.send(records.slice(sent, upTo));
        sent = upTo;
      } else {
        await new Promise((r) => setTimeout(r, TICK_MS));
      }
    }
    windowEnd = performance.now();
    const drainDeadline = Date.now() + (options.drainTimeoutMs ?? 120_000);
    while (runner.processedRecords < total) {
      if (Date.now() > drainDeadline) {
        throw new Error(
          `pipeline processed ${runner.processedRecords}/${total} events within the drain timeout`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    recording = false;
    const round = (ms: number): number => Math.round(ms * 10) / 10;
    return {
      targetRate: options.rate,
      achievedRate: Math.round(recordedEvents / ((windowEnd - windowStart) / 1000)),
      events: latenciesMs.length,
      p50Ms: round(percentile(latenciesMs, 50)),
      p99Ms: round(percentile(latenciesMs, 99)),
      maxMs: round(latenciesMs.reduce((a, b) => Math.max(a, b), 0)),
    };
  } finally {
    await producer.close().catch(() => undefined);
    await runner.stop();
    await log.close();
    await engine.store.close();
  }
}

runAsScript(import.meta.url, () =>
  withBrokers(
    async (brokers) => {
      const rate = Number(process.argv[2] ?? 100);
      const seconds = Number(process.argv[3] ?? 20);
      const result = await benchKafkaLatency({ brokers, rate, seconds });
      console.log(JSON.stringify({ bench: 'kafka-latency', brokers, ...result }));
    },
    { quickJit: false, heapMb: 1024 },
  ),
);
