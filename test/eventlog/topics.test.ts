import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { topicsCreate } from '../../src/cli/topics.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import { deadLetterTopicMaxBytes, topicNames, topicSpecs } from '../../src/eventlog/topics.ts';
import { silentLogger } from '../../src/logging/logger.ts';

describe('topic specs', () => {
  it('list every topic with the prefix, partitions, replication and retention or compaction', () => {
    const config = parseConfig({
      eventLog: { topics: { prefix: 'prod.', partitions: 12, replicationFactor: 3 } },
    });
    const specs = topicSpecs(config);
    assert.deepEqual(
      specs.map((s) => s.name),
      ['interactions', 'items', 'recommendations', 'dlq', 'teacher-cases', 'trajectories', 'item-deltas'].map(
        (n) => `prod.${n}`,
      ),
    );
    assert.ok(
      specs.every(
        (s) => s.partitions === 12 && s.replicationFactor === 3 && s.config?.['min.insync.replicas'] === '2',
      ),
    );
    const byName = new Map(specs.map((s) => [s.name, s.config ?? {}]));
    assert.equal(byName.get(topicNames(config).items)?.['cleanup.policy'], 'compact');
    assert.equal(byName.get(topicNames(config).deadLetters)?.['retention.ms'], String(30 * 86_400_000));
    assert.equal(byName.get(topicNames(config).interactions)?.['retention.ms'], String(7 * 86_400_000));
    assert.equal(topicSpecs(parseConfig({}))[0]?.config?.['min.insync.replicas'], '1');
  });

  it('give the DLQ a max.message.bytes above the input topics\', so a dead letter of any accepted record fits (issue 16)', () => {
    const config = parseConfig({ eventLog: { topics: { maxMessageBytes: 2_000_000 } } });
    const byName = new Map(topicSpecs(config).map((s) => [s.name, s.config ?? {}]));
    const names = topicNames(config);
    const input = Number(byName.get(names.interactions)?.['max.message.bytes']);
    const dlq = Number(byName.get(names.deadLetters)?.['max.message.bytes']);
    assert.equal(input, 2_000_000);
    assert.equal(Number(byName.get(names.items)?.['max.message.bytes']), 2_000_000);
    assert.equal(dlq, deadLetterTopicMaxBytes(input));
    assert.ok(dlq > 2 * input, `${dlq} holds the key twice, the headers and the value of a ${input}-byte record`);
    assert.equal(topicSpecs(parseConfig({}))[0]?.config?.['max.message.bytes'], '1048588', 'Kafka\'s default');
  });

  it('the embedded log applies the max.message.bytes topicsCreate sets, all or nothing per send', async () => {
    const config = parseConfig({ eventLog: { topics: { maxMessageBytes: 10_000 } } });
    const log = createEmbeddedEventLog(config.eventLog, silentLogger());
    try {
      await topicsCreate(config, silentLogger(), log);
      const names = topicNames(config);
      const producer = log.producer();
      await assert.rejects(
        producer.send([
          { topic: names.interactions, key: 'u', value: Buffer.alloc(10) },
          { topic: names.interactions, key: 'u', value: Buffer.alloc(10_000) },
        ]),
        { code: 'MESSAGE_TOO_LARGE' },
      );
      await producer.send([{ topic: names.deadLetters, key: 'u', value: Buffer.alloc(15_000) }]);
      const consumer = log.consumer({ groupId: 'g', topics: [names.interactions], fromBeginning: true, maxBatchRecords: 10 });
      assert.equal((await consumer.lag()).reduce((n, p) => n + p.lag, 0), 0, 'nothing of the refused send landed');
    } finally {
      await log.close();
    }
  });

  it('topicsCreate ensures them on the event log it is given', async () => {
    const config = parseConfig({ eventLog: { topics: { partitions: 2 } } });
    const log = createEmbeddedEventLog(config.eventLog, silentLogger());
    try {
      const specs = await topicsCreate(config, silentLogger(), log);
      const consumer = log.consumer({
        groupId: 'g',
        topics: [topicNames(config).items],
        fromBeginning: true,
        maxBatchRecords: 1,
      });
      assert.equal(specs.length, 7);
      assert.deepEqual(
        (await consumer.lag()).map((p) => p.partition),
        [0, 1],
      );
    } finally {
      await log.close();
    }
  });
});
