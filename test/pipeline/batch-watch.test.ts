import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FatalError, TransientError } from '../../src/errors/index.ts';
import type { BatchHandler, ConsumedBatch } from '../../src/eventlog/port.ts';
import { BatchWatch } from '../../src/pipeline/batch-watch.ts';

/**
 * The runner's stuck-batch watch alone, on a clock the test moves: what counts as the same batch, when it is
 * stuck, and when it is forgotten.
 */

const STUCK_MS = 1_000;

const batch = (partition: number, offset: number): ConsumedBatch => ({
  topic: 't',
  partition,
  records: [{ topic: 't', partition, offset: String(offset), key: null, value: Buffer.from('v'), headers: {}, timestampMs: 0 }],
  highWatermark: null,
});

function setup(): { watch: BatchWatch; clock: { now: number }; retries: string[] } {
  const clock = { now: 0 };
  return { watch: new BatchWatch(STUCK_MS, () => clock.now), clock, retries: [] };
}

const failing: BatchHandler = () => Promise.reject(new TransientError('STORE_UNAVAILABLE', 'down'));

describe('BatchWatch', () => {
  it('a batch redelivered again and again is stuck once watched past stuckMs; its success clears it', async () => {
    const { watch, clock, retries } = setup();
    let fail = true;
    const handler = watch.wrap('interactions', (b) => (fail ? failing(b) : Promise.resolve()), (c) => retries.push(c));
    for (let i = 0; i < 4; i++) {
      await assert.rejects(handler(batch(0, 7)), { code: 'STORE_UNAVAILABLE' }, 'the error goes on to the adapter');
      if (i === 3) assert.equal(watch.stuck(), null, '900 ms since the first attempt: not yet');
      clock.now += 300;
    }
    assert.equal(watch.failures('interactions'), 4);
    assert.equal(watch.failures('items'), 0);
    assert.deepEqual(retries, ['interactions', 'interactions', 'interactions', 'interactions']);
    assert.deepEqual(watch.stuck(), { consumer: 'interactions', topic: 't', partition: 0, offset: '7', sinceMs: 0, failures: 4 });

    fail = false;
    await handler(batch(0, 7));
    assert.equal(watch.stuck(), null);
    assert.equal(watch.failures('interactions'), 0);
  });

  it('an attempt that never ends is stuck too (a hung call), with 0 failures', () => {
    const { watch, clock } = setup();
    const handler = watch.wrap('items', () => new Promise<void>(() => {}), () => {});
    void handler(batch(2, 0));
    clock.now = STUCK_MS;
    assert.equal(watch.stuck(), null);
    clock.now = 10 * STUCK_MS;
    assert.deepEqual(watch.stuck(), { consumer: 'items', topic: 't', partition: 2, offset: '0', sinceMs: 0, failures: 0 });
  });

  it('a batch that stops being retried (its partition went to another instance) is forgotten after stuckMs', async () => {
    const { watch, clock } = setup();
    const handler = watch.wrap('interactions', failing, () => {});
    await assert.rejects(handler(batch(1, 5)));
    clock.now = 600;
    await assert.rejects(handler(batch(1, 5)));
    clock.now = 1_500;
    assert.equal(watch.stuck()?.partition, 1, 'last attempt 900 ms ago: still being retried');
    clock.now = 1_601;
    assert.equal(watch.stuck(), null);
    assert.equal(watch.failures('interactions'), 0);
  });

  it('another first offset on the partition is another batch: its watch starts afresh', async () => {
    const { watch, clock } = setup();
    const handler = watch.wrap('interactions', failing, () => {});
    await assert.rejects(handler(batch(0, 5)));
    clock.now = 900;
    // The previous owner committed offset 5 and more while this instance had the partition away.
    await assert.rejects(handler(batch(0, 9)));
    clock.now = 1_500;
    assert.equal(watch.stuck(), null, 'the batch at 9 is 600 ms old');
    assert.equal(watch.failures('interactions'), 1);
  });

  it('a fatal error is not a retry and leaves nothing stuck: the consumer stops and readiness says so itself', async () => {
    const { watch, clock, retries } = setup();
    const handler = watch.wrap('item-deltas', () => Promise.reject(new FatalError('STORE_AUTH', '401')), (c) => retries.push(c));
    await assert.rejects(handler(batch(0, 0)), { code: 'STORE_AUTH' });
    clock.now = 10 * STUCK_MS;
    assert.equal(watch.stuck(), null);
    assert.deepEqual(retries, []);
  });

  it('partitions and consumers are watched apart; the oldest stuck batch is reported', async () => {
    const { watch, clock } = setup();
    const interactions = watch.wrap('interactions', failing, () => {});
    const items = watch.wrap('items', failing, () => {});
    await assert.rejects(items(batch(0, 0)));
    clock.now = 100;
    await assert.rejects(interactions(batch(0, 0)));
    await assert.rejects(interactions(batch(1, 0)));
    clock.now = 1_050;
    await assert.rejects(items(batch(0, 0)));
    await assert.rejects(interactions(batch(0, 0)));
    await assert.rejects(interactions(batch(1, 0)));
    assert.equal(watch.stuck()?.consumer, 'items');
    assert.equal(watch.failures('interactions'), 2);
    assert.equal(watch.failures('items'), 2);
  });
});
