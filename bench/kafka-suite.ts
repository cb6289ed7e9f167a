import { Registry } from 'prom-client';
import { loadConfig } from '../src/config/load.ts';
import { generateCatalogue, generateStream } from '../src/data/synthetic.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline } from '../src/main.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from '../src/cli/produce.ts';
import { percentile } from '../src/util/stats.ts';
import { startLocalBroker } from '../scripts/kafka/broker.mjs';
import { benchRawKafka } from './kafka-raw.ts';
import { machine, save, type Row } from './report.ts';

/**
 * `npm run bench -- kafka`: on one local broker, the raw kafkajs consume → produce ceiling, then the full
 * pipeline with ranking off and with the baseline ranking on, end-to-end latency measured from the record's
 * append to its outputs being acknowledged. Uses `KAFKA_BROKERS` when set, else starts the local broker.
 */
export async function runKafkaBench(scale: number): Promise<void> {
  const events = Math.max(5_000, Math.round(100_000 * scale));
  const local = process.env.KAFKA_BROKERS ? null : await startLocalBroker({ quickJit: false, heapMb: 1024 });
  const brokers = process.env.KAFKA_BROKERS ?? local!.brokers;
  try {
    const raw = await benchRawKafka({ brokers, events });
    const off = await pipelineOnKafka(brokers, events, false);
    const on = await pipelineOnKafka(brokers, Math.round(events / 5), true);
    const rows: Row[] = [
      { run: 'raw kafkajs consume → produce', events, 'events/s': raw.eventsPerSec, 'p50 ms': raw.p50Ms, 'p99 ms': raw.p99Ms, 'vs raw': 1 },
      { run: 'pipeline, ranking off', events, 'events/s': off.rate, 'p50 ms': off.p50, 'p99 ms': off.p99, 'vs raw': off.rate / raw.eventsPerSec },
      { run: 'pipeline, baseline ranking', events: Math.round(events / 5), 'events/s': on.rate, 'p50 ms': on.p50, 'p99 ms': on.p99, 'vs raw': on.rate / raw.eventsPerSec },
    ];
    save('kafka', 'Pipeline on a local Kafka broker (unthrottled)', rows, { machine: machine(), brokers: local ? 'local KRaft broker' : 'KAFKA_BROKERS' });
  } finally {
    await local?.stop();
  }
}

async function pipelineOnKafka(brokers: string, events: number, ranking: boolean): Promise<{ rate: number; p50: number; p99: number }> {
  const suffix = `${Date.now().toString(36)}${ranking ? 'r' : 'l'}`;
  const config = loadConfig({
    overrides: {
      eventLog: { kind: 'kafka', kafka: { brokers: brokers.split(',') }, topics: { prefix: `bench-${suffix}.` } },
      pipeline: { groupId: `bench-${suffix}`, rankingEnabled: ranking },
    },
  });
  const logger = silentLogger();
  const latencies: number[] = [];
  const pipeline = await buildPipeline(config, { logger, registry: new Registry(), observer: { endToEndLatency: (s) => void latencies.push(s * 1000) } });
  const { runner, log, topics, engine, framing } = pipeline;
  const { topicSpecs } = await import('../src/eventlog/topics.ts');
  await log.ensureTopics(topicSpecs(config));
  const synthetic = { users: 20_000, items: 20_000, events, seed: 5 };
  await produceItems(log, topics.items, generateCatalogue(synthetic), engine.codecs, framing);
  await runner.start();
  const start = performance.now();
  await produceInteractions(log, topics.interactions, generateStream(synthetic), engine.codecs, framing, NO_MALFORMED);
  while (runner.processedRecords < events) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - start) / 1000;
  await runner.stop();
  await log.close();
  return { rate: events / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}
