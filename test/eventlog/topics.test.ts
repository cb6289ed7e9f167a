import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { topicsCreate } from '../../src/cli/topics.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import { topicNames, topicSpecs } from '../../src/eventlog/topics.ts';
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
