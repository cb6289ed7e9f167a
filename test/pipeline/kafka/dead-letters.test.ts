/**
 * Issue 16 on a real broker: a record near 1 MiB that the input topic accepts must not stop its partition.
 * Before, its dead letter was larger than the DLQ topic's `max.message.bytes`, publishing failed with
 * `KAFKA_MESSAGE_TOO_LARGE` and the batch was redelivered until someone raised the DLQ's limit by hand.
 *
 * The broker comes from KAFKA_BROKERS (`npm test` sets it); run alone, the file starts a local broker.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { generateStream } from '../../../src/data/synthetic.ts';
import { deadLetterTopicMaxBytes } from '../../../src/eventlog/topics.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { buildPipeline } from '../../../src/main.ts';
import { position, startCollector } from './accounting.ts';
import { brokers, createTestTopics, encodeInteractions, onCleanup, pipelineEnv, stopOwnBroker, testEventLog } from './harness.ts';

after(() => stopOwnBroker());

describe('dead letters on Kafka (issue 16)', { timeout: 120_000 }, () => {
  it('a 1,048,400-byte record is dead-lettered truncated and the partition goes on; topics create sized the DLQ above the input', async (t) => {
    const env = pipelineEnv({ brokers: await brokers(), partitions: 1, maxBatchRecords: 50 });
    const setup = await createTestTopics(t, env);

    const admin = new kafkajs.Kafka({ brokers: setup.brokerList, logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    onCleanup(t, () => admin.disconnect());
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [setup.topics.interactions, setup.topics.deadLetters].map((name) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name, configNames: ['max.message.bytes'] })),
    });
    const limit = (topic: string): number => Number(described.resources.find((r) => r.resourceName === topic)?.configEntries[0]?.configValue);
    assert.equal(limit(setup.topics.interactions), setup.config.eventLog.topics.maxMessageBytes);
    assert.equal(limit(setup.topics.deadLetters), deadLetterTopicMaxBytes(limit(setup.topics.interactions)));

    const collector = await startCollector(t, { brokers: setup.brokerList, topics: setup.topics, codecs: setup.codecs, framing: setup.framing, keepRecords: true });
    const pipeline = await buildPipeline(setup.config, { logger: silentLogger() });
    onCleanup(t, async () => {
      await pipeline.runner.stop();
      await pipeline.log.close();
      await pipeline.engine.store.close();
    });
    await pipeline.runner.start();

    const big = Buffer.alloc(1_048_400, 0x5a);
    const events = [...generateStream({ users: 5, items: 20, events: 10, seed: 3 })];
    const producer = testEventLog(t, setup).producer();
    await producer.send([{ topic: setup.topics.interactions, key: events[0]!.userId, value: big }]);
    await producer.send([...encodeInteractions(setup, events)]);

    const accounting = await collector.waitForAccounting(events.length + 1, { timeoutMs: 60_000, stallMs: 30_000 });
    assert.equal(accounting.missing.length, 0);
    const letters = collector.deadLetters.get(position(0, '0'));
    assert.equal(letters?.length, 1);
    const envelope = letters[0]!.envelope!;
    assert.equal(envelope.truncated, true);
    assert.equal(envelope.payloadSize, big.length);
    assert.equal(envelope.payloadSha256, createHash('sha256').update(big).digest('hex'));
    assert.ok(envelope.payload.length <= setup.config.eventLog.topics.deadLetterMaxBytes);
    assert.ok(big.subarray(0, envelope.payload.length).equals(envelope.payload));
    assert.equal([...collector.recommendations.keys()].length, events.length, 'the events behind it are answered');
  });
});
