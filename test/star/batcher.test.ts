import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MicroBatcher } from '../../src/star/onnx/batcher.ts';

function recorder(delayMs = 5) {
  const batches: number[][] = [];
  const run = async (items: number[]): Promise<number[]> => {
    batches.push(items);
    await new Promise((r) => setTimeout(r, delayMs));
    return items.map((x) => x * 10);
  };
  return { batches, run };
}

/** Lets pending microtasks and I/O callbacks run; setImmediate is not mocked, so no batch timer can fire. */
async function turns(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('MicroBatcher', () => {
  it('merges calls made together into one run and hands each caller its own outputs', async () => {
    const { batches, run } = recorder();
    const b = new MicroBatcher(run, () => 1, { maxWeight: 100, maxWaitMs: 5 });
    const out = await Promise.all([b.submit([1, 2]), b.submit([3]), b.submit([4, 5, 6])]);
    assert.deepEqual(out, [[10, 20], [30], [40, 50, 60]]);
    assert.equal(batches.length, 1);
    await b.close();
  });

  it('closes a batch at maxWeight; a request heavier than that runs alone; one batch runs at a time', async () => {
    const { batches, run } = recorder();
    let inFlight = 0;
    let maxInFlight = 0;
    const b = new MicroBatcher(
      async (items: number[]) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          return await run(items);
        } finally {
          inFlight--;
        }
      },
      () => 1,
      { maxWeight: 3, maxWaitMs: 50 },
    );
    const out = await Promise.all([b.submit([1, 2]), b.submit([3, 4]), b.submit([5, 6, 7, 8, 9]), b.submit([10])]);
    assert.deepEqual(out.flat(), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    assert.equal(maxInFlight, 1);
    for (const batch of batches) assert.ok(batch.length <= 3 || batch.length === 5, `batch of ${batch.length}`);
    assert.ok(batches.some((batch) => batch.length === 5), 'the heavy request ran whole');
    await b.close();
  });

  it('a lone request runs when maxWaitMs has passed, not before', async (t) => {
    // The batch timer runs on a mocked clock, so the test checks the waiting rule itself, not how fast the
    // machine happens to be.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const batches: number[][] = [];
    const b = new MicroBatcher(
      async (items: number[]) => {
        batches.push(items);
        return items;
      },
      () => 1,
      { maxWeight: 1_000, maxWaitMs: 20 },
    );
    let done = false;
    const pending = b.submit([1]).then((out) => ((done = true), out));
    t.mock.timers.tick(19);
    await turns();
    assert.deepEqual(batches, [], 'nothing ran before maxWaitMs');
    assert.equal(done, false);
    t.mock.timers.tick(1);
    assert.deepEqual(await pending, [1]);
    assert.deepEqual(batches, [[1]]);
    await b.close();
  });

  it('maxWaitMs 0 runs the requests of one tick together without waiting on a timer', async (t) => {
    // With setTimeout mocked and never advanced, only the same-tick path (setImmediate) can run the batch.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const batches: number[][] = [];
    const b = new MicroBatcher(
      async (items: number[]) => {
        batches.push(items);
        return items.map((x) => x * 10);
      },
      () => 1,
      { maxWeight: 1_000, maxWaitMs: 0 },
    );
    assert.deepEqual(await Promise.all([b.submit([1]), b.submit([2])]), [[10], [20]]);
    assert.deepEqual(batches, [[1, 2]]);
    await b.close();
  });

  it('rejects every request of a failed batch, and keeps serving later ones', async () => {
    let fail = true;
    const b = new MicroBatcher(
      async (items: number[]) => {
        if (fail) throw new Error('boom');
        return items;
      },
      () => 1,
      { maxWeight: 10, maxWaitMs: 1 },
    );
    const results = await Promise.allSettled([b.submit([1]), b.submit([2])]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    fail = false;
    assert.deepEqual(await b.submit([3]), [3]);
    await b.close();
  });

  it('close() runs what was submitted, then refuses new work', async () => {
    const { run } = recorder();
    const b = new MicroBatcher(run, () => 1, { maxWeight: 10, maxWaitMs: 1_000 });
    const pending = b.submit([7]);
    await b.close();
    assert.deepEqual(await pending, [70]);
    await assert.rejects(b.submit([1]), /closed/);
  });
});
