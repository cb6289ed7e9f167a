/**
 * Readiness across a broker outage on a real broker (issue 16, finding 4: `/readyz` answered 200 for the 110 s a
 * broker was down while kafkajs logged "consumer crashed"). The pipeline runs in this process on its own local
 * KRaft broker, which the test SIGKILLs and starts again on the same port and data. Required: not ready while
 * the broker is down, saying which consumer and why; ready again once it is back, and consuming. How long each
 * flip takes is reported, not asserted (no wall-clock bounds).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateStream } from '../../../src/data/synthetic.ts';
import { buildPipeline } from '../../../src/main.ts';
import { pipelineReadiness } from '../../../src/ops/service.ts';
import { eventually } from '../../helpers.ts';
import { capturingLogger } from '../outage-scenario.ts';
import { createTestTopics, encodeInteractions, onCleanup, pipelineEnv, startBroker, testEventLog } from './harness.ts';

describe('readiness on a real broker', { timeout: 300_000 }, () => {
  it('is false while the broker is stopped (consumer crashed, restarting) and true again once it is back', async (t) => {
    const broker = await startBroker();
    onCleanup(t, () => broker.stop());
    const env = pipelineEnv({
      brokers: broker.brokers,
      partitions: 2,
      maxBatchRecords: 100,
      extra: { STARSTREAM_STORE__DIMENSION: '8', STARSTREAM_PIPELINE__STUCK_BATCH_MS: '5000' },
    });
    const setup = await createTestTopics(t, env);
    const captured = capturingLogger();
    const pipeline = await buildPipeline(setup.config, { logger: captured.logger });
    onCleanup(t, async () => {
      await pipeline.runner.stop();
      await pipeline.log.close();
    });
    const readiness = pipelineReadiness(pipeline, captured.logger);
    await pipeline.runner.start();
    await eventually(() => pipeline.runner.ready, 60_000, 50);

    const log = testEventLog(t, setup);
    const producer = log.producer();
    onCleanup(t, () => producer.close());
    const events = [...generateStream({ events: 200, users: 20, items: 40, seed: 16 })];
    const records = [...encodeInteractions(setup, events)];
    await producer.send(records.slice(0, 100));
    await eventually(() => pipeline.runner.processedRecords >= 100, 60_000, 50);

    const killedAt = Date.now();
    await broker.kill();
    const down = await eventually(async () => {
      const r = await readiness();
      return r.ready ? null : r;
    }, 120_000, 50);
    const notReadyAfterMs = Date.now() - killedAt;
    assert.ok(down);
    const reasons = down.reasons ?? [];
    assert.equal(down.checks.consuming, false);
    assert.ok(
      reasons.some((r) => /^(interactions|items) consumer not fetching: (crashed, kafkajs restarts it|the log has not answered a fetch)/.test(r)),
      reasons.join('\n'),
    );
    // It stays not ready while the broker is down: the crash is not forgotten when kafkajs tries again.
    for (let i = 0; i < 20; i++) {
      assert.equal(pipeline.runner.ready, false, pipeline.runner.health().reasons.join('\n'));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    await broker.start();
    const restartedAt = Date.now();
    await eventually(() => pipeline.runner.ready, 120_000, 50);
    const readyAfterMs = Date.now() - restartedAt;
    assert.equal((await readiness()).ready, true);
    await producer.send(records.slice(100));
    await eventually(() => pipeline.runner.processedRecords >= 200, 120_000, 50);
    t.diagnostic(`not ready ${notReadyAfterMs} ms after the kill (${reasons.join('; ')}); ready ${readyAfterMs} ms after the broker served clients again`);
  });
});
