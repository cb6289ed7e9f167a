import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { refreshGauges } from '../../src/cli/gauges.ts';
import { startTestPipeline, type TestPipeline } from '../ops/helpers.ts';

/** `demo` and `replay` refresh the store-size gauges as `run` does (they stayed 0 in the demo). */
describe('refreshGauges', () => {
  let running: TestPipeline;
  before(async () => {
    running = await startTestPipeline();
    await running.feed(200);
  });
  after(() => running.close());

  const gauge = async (name: string): Promise<number> => {
    const line = (await running.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} is exported`);
    return Number(line.split(' ')[1]);
  };

  it('sets starstream_store_users and _items from the store', async () => {
    assert.equal(await gauge('starstream_store_users'), 0, 'nothing set them yet');
    // A timer far beyond the test: the refresh below is the one under test, not a timed one.
    const gauges = refreshGauges(running.pipeline, 3_600_000);
    await gauges.refresh();
    await gauges.stop();
    await gauges.stop(); // twice is fine
    const counts = await running.pipeline.engine.store.counts();
    assert.ok(counts.users > 0 && counts.items > 0);
    assert.equal(await gauge('starstream_store_users'), counts.users);
    assert.equal(await gauge('starstream_store_items'), counts.items);
  });
});
