/**
 * `KafkaEventConsumer.health()` against a stand-in kafkajs consumer that the test drives event by event: the
 * states a real broker reaches only with timing luck (a crash kafkajs restarts, a fetch left unanswered), each
 * exactly. The real-broker side is `test/pipeline/kafka/readiness.slow.test.ts` and the contract's `health()`
 * test. (No "kafka" in this file's path: it needs no broker.)
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type kafkajs from 'kafkajs';
import { parseConfig } from '../../src/config/load.ts';
import { KafkaEventConsumer } from '../../src/eventlog/kafka/consumer.ts';
import { silentLogger } from '../../src/logging/logger.ts';

const EVENTS = {
  GROUP_JOIN: 'consumer.group_join',
  FETCH_START: 'consumer.fetch_start',
  FETCH: 'consumer.fetch',
  CRASH: 'consumer.crash',
} as const;

/** The few kafkajs consumer calls the adapter makes; `emit` plays the instrumentation events. */
function standIn(): { kafka: kafkajs.Kafka; emit(event: keyof typeof EVENTS, payload: unknown): void } {
  const emitter = new EventEmitter();
  const consumer = {
    events: EVENTS,
    on: (event: string, listener: (e: { payload: unknown }) => void) => emitter.on(event, listener),
    connect: async () => {},
    subscribe: async () => {},
    run: async () => {},
    stop: async () => {},
    disconnect: async () => {},
    pause: () => {},
    resume: () => {},
  };
  return {
    kafka: { consumer: () => consumer } as unknown as kafkajs.Kafka,
    emit: (event, payload) => void emitter.emit(EVENTS[event], { payload }),
  };
}

function consumerOn(kafka: kafkajs.Kafka): KafkaEventConsumer {
  const settings = parseConfig({ eventLog: { kind: 'kafka' } }).eventLog.kafka;
  return new KafkaEventConsumer(
    { kafka, admin: () => Promise.reject(new Error('no admin here')), settings, logger: silentLogger() },
    { groupId: 'g', topics: ['t'], fromBeginning: true, maxBatchRecords: 10 },
  );
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('KafkaEventConsumer.health()', () => {
  it('not fetching until it joins; a restarted crash until it joins again; unanswered fetches with their start time', async () => {
    const { kafka, emit } = standIn();
    const consumer = consumerOn(kafka);
    assert.deepEqual(consumer.health(), { notFetching: 'not started', fetchUnansweredSinceMs: null });
    void consumer.run(async () => {});
    await tick();
    assert.equal(consumer.health().notFetching, 'joining the consumer group');

    emit('GROUP_JOIN', { memberAssignment: { t: [0] } });
    assert.deepEqual(consumer.health(), { notFetching: null, fetchUnansweredSinceMs: null });

    const before = Date.now();
    emit('FETCH_START', { nodeId: 1 });
    const since = consumer.health().fetchUnansweredSinceMs;
    assert.ok(since !== null && since >= before && since <= Date.now());
    // kafkajs retries a failed fetch (FETCH_START again, no FETCH): the wait is as old as the first one.
    await new Promise((resolve) => setTimeout(resolve, 5));
    emit('FETCH_START', { nodeId: 1 });
    assert.equal(consumer.health().fetchUnansweredSinceMs, since);
    emit('FETCH_START', { nodeId: 2 });
    assert.equal(consumer.health().fetchUnansweredSinceMs, since, 'the oldest over the brokers');
    emit('FETCH', { nodeId: 1, duration: 1, numberOfBatches: 0 });
    assert.ok((consumer.health().fetchUnansweredSinceMs ?? 0) > (since ?? 0), 'node 2 still waits, since later');
    emit('FETCH', { nodeId: 2, duration: 1, numberOfBatches: 0 });
    assert.equal(consumer.health().fetchUnansweredSinceMs, null);

    const refused = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), { name: 'KafkaJSConnectionError', retriable: true });
    emit('CRASH', { error: refused, groupId: 'g', restart: true });
    assert.match(consumer.health().notFetching ?? '', /^crashed, kafkajs restarts it \(KAFKA_[A-Z_]+\)$/);
    emit('FETCH_START', { nodeId: 1 });
    emit('CRASH', { error: refused, groupId: 'g', restart: true });
    assert.match(consumer.health().notFetching ?? '', /^crashed/, 'still crashed while kafkajs retries');
    emit('GROUP_JOIN', { memberAssignment: { t: [0] } });
    assert.deepEqual(consumer.health(), { notFetching: null, fetchUnansweredSinceMs: null }, 'rejoined: fetching again');

    await consumer.stop();
    assert.equal(consumer.health().notFetching, 'stopped');
  });

  it('a crash kafkajs does not restart is a failure: not fetching, and run() rejects', async () => {
    const { kafka, emit } = standIn();
    const consumer = consumerOn(kafka);
    const run = consumer.run(async () => {});
    await tick();
    emit('GROUP_JOIN', { memberAssignment: { t: [0] } });
    const denied = Object.assign(new Error('Topic authorization failed'), { name: 'KafkaJSProtocolError', type: 'TOPIC_AUTHORIZATION_FAILED', retriable: false });
    emit('CRASH', { error: denied, groupId: 'g', restart: false });
    await assert.rejects(run);
    assert.match(consumer.health().notFetching ?? '', /^failed \([A-Z_]+\)$/);
  });
});
