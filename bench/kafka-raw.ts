/**
 * The raw Kafka ceiling: a kafkajs consume → produce loop that does nothing else, with the delivery settings
 * the pipeline uses (eachBatch, commit after the outputs are acknowledged, idempotent producer, acks=all).
 * The pipeline's figures go beside these: the gap is what starstream's own work costs.
 *
 * - eventsPerSec: records moved from the input topic to the output topic per second, from the first batch
 *   handed over to the last commit, over a topic filled beforehand (so the producer feeding it is not timed).
 * - exactlyOnce: each chunk's outputs and its offset go in one transaction instead (`transaction.sendOffsets`,
 *   one transactional producer per input partition, as `src/eventlog/kafka/transactions.ts` does): the
 *   ceiling of `eventLog.kafka.exactlyOnce`.
 * - p50Ms / p99Ms: per record, the time from its batch being handed over to its output being acknowledged
 *   and its offset committed: the loop's own service time, without queueing in front of it.
 *
 *   node --import tsx bench/kafka-raw.ts [events]     (KAFKA_BROKERS, or a local broker started for the run;
 *                                                      prints chunks of 500, then whole fetched batches)
 */
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { percentile } from '../src/util/stats.ts';
import { runAsScript, withBrokers } from './report.ts';

export interface RawKafkaResult {
  readonly eventsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Records per produce + commit, on average: the latencies are per such batch, so they grow with it. */
  readonly meanBatchRecords: number;
}

export interface RawKafkaOptions {
  /** Bootstrap servers, comma-separated. */
  readonly brokers: string;
  /** Records to move; 100k small ones by default. */
  readonly events?: number;
  readonly partitions?: number;
  readonly valueBytes?: number;
  /**
   * Records per produce + commit, as the adapter hands a fetched batch to the pipeline in chunks of
   * `pipeline.maxBatchRecords` (500 by default); 0 = the whole fetched batch at once.
   */
  readonly maxBatchRecords?: number;
  /** Transactions with the consumed offsets (see above). @default false */
  readonly exactlyOnce?: boolean;
  /** Give up after this long, ms. */
  readonly timeoutMs?: number;
}

export async function benchRawKafka(options: RawKafkaOptions): Promise<RawKafkaResult> {
  const events = options.events ?? 100_000;
  const partitions = options.partitions ?? 6;
  const valueBytes = options.valueBytes ?? 100;
  const maxBatchRecords = options.maxBatchRecords ?? 500;
  const suffix = randomBytes(4).toString('hex');
  const input = `bench-raw-in-${suffix}`;
  const output = `bench-raw-out-${suffix}`;
  const kafka = new kafkajs.Kafka({
    clientId: 'bench-raw',
    brokers: options.brokers.split(','),
    // Failures surface as exceptions; kafkajs's per-request retry chatter would only blur the output.
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
  });
  const groupId = `bench-raw-${suffix}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const transactional = new Map<number, kafkajs.Producer>();
  const transactionalFor = async (partition: number): Promise<kafkajs.Producer> => {
    let tx = transactional.get(partition);
    if (!tx) {
      tx = kafka.producer({ idempotent: true, maxInFlightRequests: 1, transactionalId: `${groupId}.${input}.${partition}` });
      transactional.set(partition, tx);
      await tx.connect();
    }
    return tx;
  };
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [input, output].map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
    });
    await producer.connect();
    await fill(producer, input, events, valueBytes);

    const latencies = new Float64Array(events);
    let moved = 0;
    let batches = 0;
    let firstAt = 0;
    let lastAt = 0;
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    await consumer.connect();
    await consumer.subscribe({ topics: [input], fromBeginning: true });
    await consumer.run({
      eachBatchAutoResolve: false,
      autoCommitThreshold: 1,
      eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
        const size = maxBatchRecords > 0 ? maxBatchRecords : batch.messages.length;
        for (let from = 0; from < batch.messages.length; from += size) {
          const chunk = batch.messages.slice(from, from + size);
          const start = performance.now();
          if (firstAt === 0) firstAt = start;
          const messages = chunk.map((m) => ({ key: m.key, value: m.value }));
          if (options.exactlyOnce) {
            const transaction = await (await transactionalFor(batch.partition)).transaction();
            await transaction.send({ topic: output, acks: -1, messages });
            const next = (BigInt(chunk[chunk.length - 1]!.offset) + 1n).toString();
            await transaction.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: batch.partition, offset: next }] }] });
            await transaction.commit();
          } else {
            await producer.send({ topic: output, acks: -1, messages });
          }
          resolveOffset(chunk[chunk.length - 1]!.offset);
          await commitOffsetsIfNecessary();
          lastAt = performance.now();
          const took = lastAt - start;
          batches++;
          for (let i = 0; i < chunk.length && moved < events; i++) latencies[moved++] = took;
        }
        if (moved >= events) finish();
      },
    });
    const timeoutMs = options.timeoutMs ?? 300_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      finished,
      new Promise(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(new Error(`moved ${moved}/${events} in ${timeoutMs} ms`)),
            timeoutMs,
          )),
      ),
    ]).finally(() => clearTimeout(timer));
    return {
      eventsPerSec: Math.round(events / ((lastAt - firstAt) / 1000)),
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      meanBatchRecords: Math.round(events / batches),
    };
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await Promise.all([...transactional.values()].map((tx) => tx.disconnect().catch(() => undefined)));
    await admin.deleteTopics({ topics: [input, output] }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

/** Fills the input as fast as the broker takes it, several batches in flight (the idempotent producer serializes them per broker). */
async function fill(
  producer: kafkajs.Producer,
  topic: string,
  events: number,
  valueBytes: number,
): Promise<void> {
  const value = randomBytes(valueBytes);
  const chunk = 2_000;
  for (let from = 0; from < events; from += chunk * 4) {
    const sends: Promise<unknown>[] = [];
    for (let start = from; start < Math.min(events, from + chunk * 4); start += chunk) {
      const messages = [];
      for (let i = start; i < Math.min(events, start + chunk); i++)
        messages.push({ key: `user-${i % 10_000}`, value });
      sends.push(producer.send({ topic, acks: -1, messages }));
    }
    await Promise.all(sends);
  }
}


function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

runAsScript(import.meta.url, () =>
  withBrokers(async (brokers) => {
    const events = Number(process.argv[2] ?? 100_000);
    for (const exactlyOnce of [false, true]) {
      for (const maxBatchRecords of [500, 0]) {
        const result = await benchRawKafka({ brokers, events, maxBatchRecords, exactlyOnce });
        console.log(JSON.stringify({ bench: 'kafka-raw', brokers, events, maxBatchRecords, exactlyOnce, ...result }));
      }
    }
  }),
);
