/**
 * Exactly-once outputs (`eventLog.kafka.exactlyOnce`) on the real broker, with the publish of outputs failing
 * for a while mid-stream (RELIABILITY.md "What each mode guarantees", issue 16).
 *
 * The pipeline runs in this process (`buildPipeline`) on a Kafka log whose output producer is wrapped: for a
 * stretch of sends (the `FAIL_FROM`-th to the `FAIL_UNTIL`-th), each send also carries, after the batch's real
 * outputs, one record larger than the recommendations topic's `max.message.bytes`. The real outputs are
 * appended first (their own produce requests), then the broker refuses the big one: with exactlyOnce the
 * transaction is aborted; without (the control), the real outputs stay published and are published again on
 * redelivery. Required with exactlyOnce, read with read_committed (the collector's kafkajs default): every
 * input offset answered once (0 missing, 0 duplicates), and the aborted attempts' recommendations really are
 * on the log (read again with read_uncommitted). The control must show duplicates, so the fault is real.
 * Last, a ~1 MiB input record with exactlyOnce: its truncated dead letter commits in the transaction.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import kafkajs from 'kafkajs';
import { generateStream } from '../../../src/data/synthetic.ts';
import type {
  ConsumedPosition,
  EventLog,
  EventProducer,
  OutgoingRecord,
  TransactionalProducer,
} from '../../../src/eventlog/port.ts';
import { toKafkaJsConfig, toTransactionalProducerConfig } from '../../../src/eventlog/kafka/config.ts';
import { createKafkaEventLog } from '../../../src/eventlog/kafka/log.ts';
import { KafkaTransactionalProducer } from '../../../src/eventlog/kafka/transactions.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { buildPipeline } from '../../../src/main.ts';
import { EVENT_ID_HEADER } from '../../../src/pipeline/outputs.ts';
import { uniqueName } from '../../helpers.ts';
import { capturingLogger, redeliveries, relearned } from '../outage-scenario.ts';
import { assertAccountedFor, describeAccounting, position, startCollector } from './accounting.ts';
import {
  brokers,
  createTestTopics,
  encodeInteractions,
  onCleanup,
  pipelineEnv,
  producePaced,
  stopOwnBroker,
  testEventLog,
  waitUntil,
  withGarbage,
} from './harness.ts';

after(() => stopOwnBroker());

const EVENTS = 2_000;
const PARTITIONS = 3;
const MAX_BATCH = 50;
const GARBAGE_EVERY = 250;
/** Transactions from the FAIL_FROM-th to the FAIL_UNTIL-th (1-based) carry the record the broker refuses. */
const FAIL_FROM = 6;
const FAIL_UNTIL = 15;

/**
 * A Kafka log whose output sends fail (after their real records went out) for a stretch: the transactional
 * producer's with exactly-once outputs, the plain producer's without.
 */
function failingPublishLog(
  inner: EventLog,
  oversized: OutgoingRecord,
): { log: EventLog; injected: () => number } {
  let sends = 0;
  let injected = 0;
  const poisoned = (records: readonly OutgoingRecord[]): readonly OutgoingRecord[] => {
    sends++;
    if (sends < FAIL_FROM || sends > FAIL_UNTIL) return records;
    injected++;
    return [...records, oversized];
  };
  const wrap = (tx: TransactionalProducer): TransactionalProducer => ({
    sendWithOffsets: (records: readonly OutgoingRecord[], consumed: ConsumedPosition) =>
      tx.sendWithOffsets(poisoned(records), consumed),
    close: () => tx.close(),
  });
  const wrapPlain = (producer: EventProducer): EventProducer => ({
    send: (records) => producer.send(poisoned(records)),
    close: () => producer.close(),
  });
  const log: EventLog = {
    kind: inner.kind,
    ...(inner.offsetsScope === undefined ? {} : { offsetsScope: inner.offsetsScope }),
    ensureTopics: (specs) => inner.ensureTopics(specs),
    consumer: (options) => inner.consumer(options),
    producer: () => wrapPlain(inner.producer()),
    transactionalProducer: () => {
      const tx = inner.transactionalProducer?.() ?? null;
      return tx ? wrap(tx) : null;
    },
    close: () => inner.close(),
  };
  return { log, injected: () => injected };
}

/**
 * Reads `topic` with read_uncommitted (records of aborted transactions included) and counts the records per
 * event id; stopped when `t` ends.
 */
async function readUncommitted(
  t: TestContext,
  brokerList: readonly string[],
  topic: string,
): Promise<Map<string, number>> {
  const kafka = new kafkajs.Kafka({
    clientId: uniqueName('uncommitted'),
    brokers: [...brokerList],
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const consumer = kafka.consumer({
    groupId: uniqueName('uncommitted'),
    readUncommitted: true,
    maxWaitTimeInMs: 100,
  });
  onCleanup(t, () => consumer.disconnect());
  const seen = new Map<string, number>();
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const id = message.headers?.[EVENT_ID_HEADER]?.toString();
      if (id !== undefined) seen.set(id, (seen.get(id) ?? 0) + 1);
    },
  });
  return seen;
}

describe(
  'exactly-once outputs on Kafka',
  { timeout: 600_000 },
  () => {
    for (const exactlyOnce of [true, false]) {
      it(
        exactlyOnce
          ? 'exactlyOnce: no duplicate, no input lost, aborted attempts invisible to read_committed'
          : "at-least-once (the control): no input lost, the failed attempts' outputs repeated",
        async (t) => {
          const env = pipelineEnv({
            brokers: await brokers(),
            partitions: PARTITIONS,
            maxBatchRecords: MAX_BATCH,
            extra: {
              STARSTREAM_STORE__DIMENSION: '8',
              STARSTREAM_EVENT_LOG__KAFKA__EXACTLY_ONCE: String(exactlyOnce),
              STARSTREAM_EVENT_LOG__KAFKA__REDELIVERY_DELAY_MS: '50',
              STARSTREAM_EVENT_LOG__KAFKA__MAX_REDELIVERY_DELAY_MS: '500',
            },
          });
          const setup = await createTestTopics(t, env);
          const { config, topics } = setup;
          const collector = await startCollector(t, {
            brokers: setup.brokerList,
            topics,
            codecs: setup.codecs,
            framing: setup.framing,
          });
          const captured = capturingLogger();
          // Over the topic's max.message.bytes (1,048,588 by default): the broker refuses it, after the slices before it.
          const oversized: OutgoingRecord = {
            topic: topics.recommendations,
            key: 'oversized',
            value: Buffer.alloc(1_200_000, 1),
          };
          const failing = failingPublishLog(createKafkaEventLog(config.eventLog, captured.logger), oversized);
          const pipeline = await buildPipeline(config, { logger: captured.logger, log: failing.log });
          onCleanup(t, async () => {
            await pipeline.runner.stop();
            await pipeline.log.close();
          });
          let stoppedWith: unknown = null;
          pipeline.runner.done().catch((err: unknown) => (stoppedWith = err));
          await pipeline.runner.start();

          const events = [...generateStream({ events: EVENTS, users: 150, items: 300, seed: 16 })];
          const producer = producePaced(
            testEventLog(t, setup),
            withGarbage(encodeInteractions(setup, events), GARBAGE_EVERY),
            {
              ratePerSec: 1_000,
              chunk: 50,
            },
          );
          onCleanup(t, () => producer.stop());
          assert.equal(await producer.done, EVENTS);
          const result = await collector.waitForAccounting(EVENTS, {
            timeoutMs: 480_000,
            stallMs: 60_000,
            failed: () => (stoppedWith ? `the runner stopped: ${String(stoppedWith)}` : null),
          });
          const codes = redeliveries(captured.lines());
          const committedRecs = [...collector.recommendations.values()].reduce(
            (sum, list) => sum + list.length,
            0,
          );
          // exactlyOnce: the same topic with read_uncommitted holds the aborted attempts' recommendations, repeated.
          const uncommitted = exactlyOnce
            ? await readUncommitted(t, setup.brokerList, topics.recommendations)
            : new Map<string, number>();
          const repeatedUncommitted = (): number =>
            [...uncommitted.values()].reduce((sum, n) => sum + n - 1, 0);
          if (exactlyOnce) {
            await waitUntil(
              () =>
                repeatedUncommitted() > 0 &&
                [...uncommitted.values()].reduce((a, b) => a + b, 0) >= committedRecs,
              {
                timeoutMs: 120_000,
                what: 'the aborted recommendations, read with read_uncommitted',
              },
            );
          }
          const good = events.filter((_, i) => (i + 1) % GARBAGE_EVERY !== 0);
          const twice = await relearned(pipeline.engine.store, good);
          t.diagnostic(describeAccounting(result));
          t.diagnostic(
            `exactlyOnce=${exactlyOnce}: ${failing.injected()} output sends failed on purpose, redeliveries ${JSON.stringify(codes)}; ` +
              `${committedRecs} recommendations read with read_committed (${result.extraAnswers} duplicates)` +
              (exactlyOnce
                ? `; with read_uncommitted ${repeatedUncommitted()} repeats of aborted attempts so far`
                : '') +
              `; ${twice} events learned twice`,
          );

          const garbage = Math.floor(EVENTS / GARBAGE_EVERY);
          const failures = FAIL_UNTIL - FAIL_FROM + 1;
          assertAccountedFor(result, {
            inputs: EVENTS,
            deadLettered: garbage,
            deadLetterCodes: ['UNDECODABLE'],
            maxExtraAnswers: exactlyOnce ? 0 : failures * MAX_BATCH,
          });
          // The control shows the fault is real: without transactions the failed attempts' outputs stay published.
          if (!exactlyOnce)
            assert.ok(result.extraAnswers > 0, "at-least-once repeats the failed attempts' outputs");
          assert.deepEqual(collector.problems, []);
          assert.equal(stoppedWith, null, 'the runner kept running');
          assert.equal(failing.injected(), failures, 'every planned failure happened');
          assert.ok(
            (codes.KAFKA_MESSAGE_TOO_LARGE ?? 0) + (codes.KAFKA_RECORD_LIST_TOO_LARGE ?? 0) > 0,
            `failed batches redelivered: ${JSON.stringify(codes)}`,
          );
          // (With exactlyOnce, the read_uncommitted wait above is the evidence that the failed attempts' outputs reached the log.)
        },
      );
    }

    it('exactlyOnce: a 1,048,400-byte input record is dead-lettered truncated inside the transaction, and the partition goes on', async (t) => {
      const env = pipelineEnv({ brokers: await brokers(), partitions: 1, maxBatchRecords: 50, extra: { STARSTREAM_EVENT_LOG__KAFKA__EXACTLY_ONCE: 'true' } });
      const setup = await createTestTopics(t, env);
      const collector = await startCollector(t, { brokers: setup.brokerList, topics: setup.topics, codecs: setup.codecs, framing: setup.framing, keepRecords: true });
      const pipeline = await buildPipeline(setup.config, { logger: silentLogger() });
      onCleanup(t, async () => {
        await pipeline.runner.stop();
        await pipeline.log.close();
      });
      await pipeline.runner.start();
      const big = Buffer.alloc(1_048_400, 0x5a);
      const events = [...generateStream({ users: 5, items: 20, events: 10, seed: 3 })];
      const producer = testEventLog(t, setup).producer();
      await producer.send([{ topic: setup.topics.interactions, key: events[0]!.userId, value: big }]);
      await producer.send([...encodeInteractions(setup, events)]);
      const result = await collector.waitForAccounting(events.length + 1, { timeoutMs: 60_000, stallMs: 30_000 });
      t.diagnostic(describeAccounting(result));
      assertAccountedFor(result, { inputs: events.length + 1, deadLettered: 1, maxExtraAnswers: 0 });
      const envelope = collector.deadLetters.get(position(0, '0'))?.[0]?.envelope;
      assert.equal(envelope?.truncated, true);
      assert.equal(envelope.payloadSize, big.length);
    });

    it('fencing: the next producer of a partition\'s transactional id aborts the previous one\'s open transaction, whose commit is then refused', async (t) => {
      const env = pipelineEnv({ brokers: await brokers(), partitions: 1, maxBatchRecords: 50, extra: { STARSTREAM_EVENT_LOG__KAFKA__EXACTLY_ONCE: 'true' } });
      const setup = await createTestTopics(t, env);
      const settings = setup.config.eventLog.kafka;
      const kafka = new kafkajs.Kafka(toKafkaJsConfig(settings));
      // The zombie: its transaction holds before the commit until released, as a process paused in a long GC or
      // cut off from the group would, while its partition moves on.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let reached!: () => void;
      const atCommit = new Promise<void>((resolve) => (reached = resolve));
      const holding = (producer: kafkajs.Producer): kafkajs.Producer => ({
        ...producer,
        transaction: async () => {
          const transaction = await producer.transaction();
          return {
            ...transaction,
            commit: async () => {
              reached();
              await released;
              return transaction.commit();
            },
          };
        },
      });
      const zombie = new KafkaTransactionalProducer((id) => holding(kafka.producer(toTransactionalProducerConfig(settings, id))), silentLogger());
      const successor = new KafkaTransactionalProducer((id) => kafka.producer(toTransactionalProducerConfig(settings, id)), silentLogger());
      onCleanup(t, () => zombie.close());
      onCleanup(t, () => successor.close());
      const consumed = { groupId: setup.config.pipeline.groupId, topic: setup.topics.interactions, partition: 0, nextOffset: '1' };
      const output = (key: string): OutgoingRecord => ({ topic: setup.topics.recommendations, key, value: Buffer.from(key) });

      const zombieSend = zombie.sendWithOffsets([output('zombie')], consumed);
      zombieSend.catch(() => undefined);
      await atCommit;
      await successor.sendWithOffsets([output('successor')], { ...consumed, nextOffset: '2' });
      release();
      await assert.rejects(zombieSend, (err: unknown) => {
        assert.equal((err as { code?: unknown }).code, 'KAFKA_PRODUCER_FENCED', String(err));
        return true;
      });

      // read_committed: the successor's record only (the zombie's was appended first, so it would come first).
      const keys: string[] = [];
      const reader = kafka.consumer({ groupId: uniqueName('fencing-reader'), maxWaitTimeInMs: 100 });
      onCleanup(t, () => reader.disconnect());
      await reader.connect();
      await reader.subscribe({ topics: [setup.topics.recommendations], fromBeginning: true });
      await reader.run({ eachMessage: async ({ message }) => void keys.push(message.key?.toString() ?? '') });
      await waitUntil(() => keys.includes('successor'), { timeoutMs: 60_000, what: 'the successor\'s record' });
      assert.deepEqual(keys, ['successor']);
      const admin = kafka.admin();
      onCleanup(t, () => admin.disconnect());
      await admin.connect();
      const [committed] = await admin.fetchOffsets({ groupId: consumed.groupId, topics: [consumed.topic] });
      assert.equal(committed?.partitions.find((p) => p.partition === 0)?.offset, '2', 'the successor\'s offset is the committed one');
      t.diagnostic(`zombie refused with KAFKA_PRODUCER_FENCED; read_committed read ${JSON.stringify(keys)}; committed offset 2`);
    });
  },
);
