/**
 * `eventLog.kafka.exactlyOnce` without a broker: which log offers transactions, the kafkajs options it maps
 * to, and the transactional producer's handling of failures against a stand-in kafkajs producer. The same
 * feature on the real broker: `test/pipeline/kafka/exactly-once.test.ts`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type kafkajs from 'kafkajs';
import { parseConfig } from '../../src/config/load.ts';
import { TransientError } from '../../src/errors/index.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import { toConsumerConfig, toTransactionalProducerConfig } from '../../src/eventlog/kafka/config.ts';
import { createKafkaEventLog } from '../../src/eventlog/kafka/log.ts';
import { KafkaTransactionalProducer, transactionalIdOf } from '../../src/eventlog/kafka/transactions.ts';
import { silentLogger } from '../../src/logging/logger.ts';

const consumed = { groupId: 'g', topic: 'in', partition: 2, nextOffset: '41' };
const record = { topic: 'out', key: 'u1', value: Buffer.from('x') };

/** What the stand-in transactions were asked to do, in order, per producer. */
interface Fake {
  readonly calls: string[];
  readonly producer: kafkajs.Producer;
}

function fakeProducer(id: string, fail: { send?: unknown; commit?: unknown; abort?: unknown } = {}): Fake {
  const calls: string[] = [];
  const transaction = {
    sendBatch: async () => {
      calls.push('sendBatch');
      if (fail.send) throw fail.send;
    },
    sendOffsets: async (offsets: { consumerGroupId: string; topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }) => {
      calls.push(`sendOffsets ${offsets.consumerGroupId} ${JSON.stringify(offsets.topics)}`);
    },
    commit: async () => {
      calls.push('commit');
      if (fail.commit) throw fail.commit;
    },
    abort: async () => {
      calls.push('abort');
      if (fail.abort) throw fail.abort;
    },
  };
  const producer = {
    connect: async () => void calls.push(`connect ${id}`),
    disconnect: async () => void calls.push('disconnect'),
    transaction: async () => transaction,
  } as unknown as kafkajs.Producer;
  return { calls, producer };
}

describe('exactly-once outputs (eventLog.kafka.exactlyOnce)', () => {
  it('is off by default and maps to a transactional id per consumed partition', () => {
    const config = parseConfig({});
    assert.equal(config.eventLog.kafka.exactlyOnce, false);
    assert.equal(transactionalIdOf(consumed), 'starstream.g.in.2');
    const options = toTransactionalProducerConfig(config.eventLog.kafka, 'starstream.g.in.2');
    assert.equal(options.transactionalId, 'starstream.g.in.2');
    assert.equal(options.idempotent, true);
    assert.equal(options.maxInFlightRequests, 1);
    // Readers never see records of open or aborted transactions.
    assert.equal(toConsumerConfig(config.eventLog.kafka, 'g').readUncommitted, false);
  });

  it('is offered by the Kafka log only when configured, and never by the embedded log (a documented no-op)', async () => {
    const off = createKafkaEventLog(parseConfig({ eventLog: { kind: 'kafka' } }).eventLog, silentLogger());
    const on = createKafkaEventLog(parseConfig({ eventLog: { kind: 'kafka', kafka: { exactlyOnce: true } } }).eventLog, silentLogger());
    // Embedded: accepted, and ignored (its send appends all or nothing; nothing survives the process).
    const embedded = createEmbeddedEventLog(parseConfig({ eventLog: { kind: 'embedded', kafka: { exactlyOnce: true } } }).eventLog, silentLogger());
    try {
      assert.equal(off.transactionalProducer?.(), null);
      const tx = on.transactionalProducer?.();
      assert.ok(tx, 'a transactional producer (connects lazily)');
      assert.equal(embedded.transactionalProducer?.() ?? null, null);
    } finally {
      await Promise.all([off.close(), on.close(), embedded.close()]);
    }
  });

  it('commits the records with the consumed offset in one transaction, one producer per partition', async () => {
    const made: Fake[] = [];
    const tx = new KafkaTransactionalProducer((id) => {
      const fake = fakeProducer(id);
      made.push(fake);
      return fake.producer;
    }, silentLogger());
    await tx.sendWithOffsets([record], consumed);
    await tx.sendWithOffsets([record], { ...consumed, nextOffset: '42' });
    await tx.sendWithOffsets([record], { ...consumed, partition: 3 });
    assert.equal(made.length, 2, 'one producer per consumed partition, reused');
    assert.deepEqual(made[0]!.calls, [
      'connect starstream.g.in.2',
      'sendBatch',
      'sendOffsets g [{"topic":"in","partitions":[{"partition":2,"offset":"41"}]}]',
      'commit',
      'sendBatch',
      'sendOffsets g [{"topic":"in","partitions":[{"partition":2,"offset":"42"}]}]',
      'commit',
    ]);
    await tx.close();
    assert.equal(made[0]!.calls.at(-1), 'disconnect');
  });

  it('aborts a transaction whose send fails, and keeps the producer', async () => {
    const tooLarge = Object.assign(new Error('too large'), { name: 'KafkaJSProtocolError', type: 'MESSAGE_TOO_LARGE', retriable: false });
    let fake: Fake | null = null;
    const tx = new KafkaTransactionalProducer((id) => (fake = fakeProducer(id, { send: tooLarge })).producer, silentLogger());
    await assert.rejects(tx.sendWithOffsets([record], consumed), { code: 'KAFKA_MESSAGE_TOO_LARGE' });
    assert.deepEqual(fake!.calls, ['connect starstream.g.in.2', 'sendBatch', 'abort']);
    await tx.close();
  });

  it('drops a fenced producer and rejects as transient; the next send makes a new one', async () => {
    // As kafkajs throws it: the broker's answer wrapped by its retrier.
    const answer = Object.assign(new Error('fenced'), { name: 'KafkaJSProtocolError', type: 'INVALID_PRODUCER_EPOCH', retriable: false });
    const fenced = Object.assign(new Error('fenced'), { name: 'KafkaJSNonRetriableError', retriable: false, cause: answer });
    const made: Fake[] = [];
    const tx = new KafkaTransactionalProducer((id) => {
      const fake = fakeProducer(id, made.length === 0 ? { commit: fenced } : {});
      made.push(fake);
      return fake.producer;
    }, silentLogger());
    await assert.rejects(tx.sendWithOffsets([record], consumed), (err: unknown) => err instanceof TransientError && err.code === 'KAFKA_PRODUCER_FENCED');
    assert.equal(made[0]!.calls.at(-1), 'disconnect', 'the fenced producer is let go');
    assert.ok(!made[0]!.calls.includes('abort'), 'a commit that failed is not aborted: the next producer settles it');
    await tx.sendWithOffsets([record], consumed);
    assert.equal(made.length, 2);
    assert.equal(made[1]!.calls.at(-1), 'commit');
    await tx.close();
  });
});
