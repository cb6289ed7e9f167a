/**
 * The Kafka adapter across a broker crash: SIGKILL the broker mid-stream, restart it on the same ports and
 * data, and check that nothing sent was lost (at-least-once: duplicates are allowed). Always uses its own
 * local broker, since it kills it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { LocalBroker } from '../../scripts/kafka/broker.mjs';
import { startLocalBroker } from '../../scripts/kafka/broker.mjs';
import { parseConfig } from '../../src/config/load.ts';
import { createKafkaEventLog } from '../../src/eventlog/kafka/log.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { withRetry } from '../../src/util/retry.ts';
import { eventually, uniqueName } from '../helpers.ts';

let broker: LocalBroker | null = null;
after(async () => {
  await broker?.stop();
});

// The timeout only guards against a hang: a loaded machine runs this several times slower than an idle one.
describe('kafka adapter across a broker crash', { timeout: 600_000 }, () => {
  it('loses nothing when the broker is killed and restarted mid-stream', async () => {
    broker = await startLocalBroker();
    const config = parseConfig({
      eventLog: {
        kind: 'kafka',
        kafka: {
          brokers: [broker.brokers],
          clientId: uniqueName('crash'),
          sessionTimeoutMs: 6_000,
          heartbeatIntervalMs: 500,
          fetchMaxWaitMs: 100,
          connectionTimeoutMs: 1_000,
          retry: { retries: 10, initialDelayMs: 200, maxDelayMs: 2_000 },
        },
      },
    });
    const log = createKafkaEventLog(config.eventLog, silentLogger());
    const topic = uniqueName('crash');
    try {
      await log.ensureTopics([{ name: topic, partitions: 3, replicationFactor: 1 }]);
      const seen = new Set<string>();
      const consumer = log.consumer({
        groupId: uniqueName('g'),
        topics: [topic],
        fromBeginning: true,
        maxBatchRecords: 100,
      });
      void consumer.run(async (batch) => {
        for (const r of batch.records) seen.add(r.value.toString());
      });
      const producer = log.producer();
      const total = 2_000;
      const retry = { retries: 30, initialDelayMs: 200, maxDelayMs: 2_000, multiplier: 2, jitter: 0.2 };
      for (let i = 0; i < total; i += 100) {
        if (i === 600) await broker.restart({ hard: true });
        const batch = Array.from({ length: 100 }, (_, j) => ({
          topic,
          key: `k${(i + j) % 17}`,
          value: Buffer.from(`v${i + j}`),
        }));
        await withRetry(() => producer.send(batch), retry);
      }
      await eventually(() => seen.size === total, 90_000, 100);
      assert.equal(seen.size, total);
    } finally {
      await log.close();
    }
  });
});
