import { Registry } from 'prom-client';
import { loadConfig } from '../src/config/load.ts';
import { generateCatalogue, generateStream } from '../src/data/synthetic.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline } from '../src/main.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from '../src/cli/produce.ts';
import { percentile } from '../src/util/stats.ts';
import { startLocalBroker } from '../scripts/kafka/broker.mjs';
import { benchKafkaLatency } from './kafka-latency.ts';
import { benchRawKafka } from './kafka-raw.ts';
import { machine, save, type Row } from './report.ts';

/**
 * `npm run bench -- kafka`: on one local broker, the raw kafkajs consume → produce ceiling, then the full
 * pipeline with ranking off and with the baseline ranking on, end-to-end latency measured from the record's
 * append to its outputs being acknowledged; last, the ranked pipeline paced at half the throughput it just
 * reached (`kafka-latency.ts`), where the target is p99 < 50 ms. Exactly-once (`eventLog.kafka.exactlyOnce`)
 * is measured beside at-least-once in the same run, on the raw loop and on the pipeline with ranking off: its
 * cost is the ratio of the two rows. Uses `KAFKA_BROKERS` when set, else
 * starts the local broker.
 */
export async function runKafkaBench(scale: number): Promise<void> {
  const events = Math.max(5_000, Math.round(100_000 * scale));
  const local = process.env.KAFKA_BROKERS ? null : await startLocalBroker({ quickJit: false, heapMb: 1024 });
  const brokers = process.env.KAFKA_BROKERS ?? local!.brokers;
  try {
    const raw = await benchRawKafka({ brokers, events });
    const rawEo = await benchRawKafka({ brokers, events, exactlyOnce: true });
    const off = await pipelineOnKafka(brokers, events, false);
    const offEo = await pipelineOnKafka(brokers, events, false, true);
    const on = await pipelineOnKafka(brokers, Math.round(events / 5), true);
    // At half of the ranked throughput just measured, paced: the latency a lightly loaded pipeline gives.
    const halfRate = Math.max(1, Math.round(on.rate / 2));
    const paced = await benchKafkaLatency({ brokers, rate: halfRate, seconds: Math.max(5, Math.round(30 * scale)) });
    const rows: Row[] = [
      { run: 'raw kafkajs consume → produce', events, 'events/s': raw.eventsPerSec, 'p50 ms': raw.p50Ms, 'p99 ms': raw.p99Ms, 'vs raw': 1, target: '' },
      { run: 'raw kafkajs consume → produce, exactlyOnce (transaction per chunk)', events, 'events/s': rawEo.eventsPerSec, 'p50 ms': rawEo.p50Ms, 'p99 ms': rawEo.p99Ms, 'vs raw': rawEo.eventsPerSec / raw.eventsPerSec, target: '' },
      { run: 'pipeline, ranking off', events, 'events/s': off.rate, 'p50 ms': off.p50, 'p99 ms': off.p99, 'vs raw': off.rate / raw.eventsPerSec, target: 'vs raw ≥ 0.5' },
      {
        run: `pipeline, ranking off, exactlyOnce (${(offEo.rate / off.rate).toFixed(2)} × at-least-once)`,
        events,
        'events/s': offEo.rate,
        'p50 ms': offEo.p50,
        'p99 ms': offEo.p99,
        'vs raw': offEo.rate / raw.eventsPerSec,
        target: '',
      },
      { run: 'pipeline, baseline ranking', events: Math.round(events / 5), 'events/s': on.rate, 'p50 ms': on.p50, 'p99 ms': on.p99, 'vs raw': on.rate / raw.eventsPerSec, target: '' },
      {
        run: `pipeline, baseline ranking, paced at half its max (${halfRate}/s)`,
        events: paced.events,
        'events/s': paced.achievedRate,
        'p50 ms': paced.p50Ms,
        'p99 ms': paced.p99Ms,
        'vs raw': paced.achievedRate / raw.eventsPerSec,
        target: 'p99 < 50 ms',
      },
    ];
    save('kafka', 'Pipeline on a local Kafka broker (rows 1–5 unthrottled over a filled topic, latency includes the backlog wait; row 6 paced)', rows, { machine: machine(), brokers: local ? 'local KRaft broker' : 'KAFKA_BROKERS' });
  } finally {
    await local?.stop();
  }
}

async function pipelineOnKafka(
  brokers: string,
  events: number,
  ranking: boolean,
  exactlyOnce = false,
): Promise<{ rate: number; p50: number; p99: number }> {
  const suffix = `${Date.now().toString(36)}${ranking ? 'r' : 'l'}${exactlyOnce ? 'x' : ''}`;
  const config = loadConfig({
    overrides: {
      eventLog: { kind: 'kafka', kafka: { brokers: brokers.split(','), exactlyOnce }, topics: { prefix: `bench-${suffix}.` } },
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
  // As for the raw ceiling, the input topic is filled first, so the producer feeding it is not timed (it would
  // share this process's event loop with the pipeline). The latencies then include the wait in that backlog.
  await produceInteractions(log, topics.interactions, generateStream(synthetic), engine.codecs, framing, NO_MALFORMED);
  const start = performance.now();
  await runner.start();
  // A stalled pipeline (a batch redelivered forever) must fail the run, not hang it.
  const deadline = Date.now() + Math.max(120_000, events * 20);
  let seconds = 0;
  try {
    while (runner.processedRecords < events) {
      if (Date.now() > deadline) {
        throw new Error(`pipeline (ranking ${ranking ? 'on' : 'off'}) stalled: ${runner.processedRecords}/${events} events processed by the deadline`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    seconds = (performance.now() - start) / 1000;
  } finally {
    await runner.stop();
    await log.close();
  }
  return { rate: events / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}
