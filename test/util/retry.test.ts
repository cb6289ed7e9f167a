import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadInputError, FatalError, TransientError } from '../../src/errors/index.ts';
import { backoffDelayMs, DEFAULT_RETRY, sleep, withRetry, type RetryPolicy } from '../../src/util/retry.ts';

const FAST: RetryPolicy = { retries: 3, initialDelayMs: 1, maxDelayMs: 2, multiplier: 2, jitter: 0.5 };

/** A function failing with the given errors in turn, then returning 'ok'; counts calls. */
function failing(errors: readonly unknown[]): { fn: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    fn: async () => {
      const err = errors[calls++];
      if (err !== undefined) throw err;
      return 'ok';
    },
    calls: () => calls,
  };
}

describe('withRetry', () => {
  it('retries transient errors and returns the first success', async () => {
    const f = failing([new TransientError('T', '1'), new TransientError('T', '2')]);
    const retries: [number, number][] = [];
    const result = await withRetry(f.fn, FAST, { onRetry: (_err, attempt, delayMs) => retries.push([attempt, delayMs]), random: () => 0.5 });
    assert.equal(result, 'ok');
    assert.equal(f.calls(), 3);
    assert.deepEqual(retries.map(([a]) => a), [1, 2]);
  });

  it('gives up after `retries` retries and throws the last error', async () => {
    const errors = Array.from({ length: 10 }, (_, i) => new TransientError('T', `attempt ${i + 1}`));
    const f = failing(errors);
    await assert.rejects(withRetry(f.fn, FAST, { random: () => 0 }), (err) => err === errors[3]);
    assert.equal(f.calls(), 4, 'one try and three retries');
  });

  it('does not retry with retries = 0', async () => {
    const f = failing([new TransientError('T', 'x')]);
    await assert.rejects(withRetry(f.fn, { ...FAST, retries: 0 }));
    assert.equal(f.calls(), 1);
  });

  for (const [name, err] of [
    ['bad input', new BadInputError('BAD', 'x')],
    ['fatal', new FatalError('FATAL', 'x')],
    ['unclassified', new Error('x')],
    ['a thrown string', 'x'],
  ] as const) {
    it(`never retries ${name}`, async () => {
      const f = failing([err]);
      let retried = false;
      await assert.rejects(withRetry(f.fn, FAST, { onRetry: () => (retried = true) }), (e) => e === err);
      assert.equal(f.calls(), 1);
      assert.equal(retried, false);
    });
  }

  it('asks shouldRetry when one is given', async () => {
    const f = failing([new Error('ECONNRESET'), new Error('ECONNRESET')]);
    assert.equal(await withRetry(f.fn, FAST, { shouldRetry: (e) => e instanceof Error && e.message === 'ECONNRESET' }), 'ok');
    assert.equal(f.calls(), 3);
    const g = failing([new TransientError('T', 'x')]);
    await assert.rejects(withRetry(g.fn, FAST, { shouldRetry: () => false }));
    assert.equal(g.calls(), 1);
  });

  it('stops waiting and gives up when the signal aborts', async (t) => {
    // The clock is mocked and never advanced: the run can only settle through the abort, never by waiting out
    // the 60 s backoff, whatever the machine's load.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const controller = new AbortController();
    const slow: RetryPolicy = { retries: 100, initialDelayMs: 60_000, maxDelayMs: 60_000, multiplier: 1, jitter: 0 };
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw new TransientError('T', 'down');
      },
      slow,
      // Aborts while the backoff is being waited (the microtask runs once the wait has begun).
      { signal: controller.signal, onRetry: () => queueMicrotask(() => controller.abort()) },
    );
    const outcome = await settledWithoutTime(run);
    assert.ok(outcome.settled, 'the abort ended the 60 s backoff');
    assert.ok(outcome.error instanceof TransientError);
    assert.equal(calls, 2, 'one call after the wake-up, then it gives up');
  });
});

/**
 * Lets pending I/O callbacks and microtasks run (setImmediate is not mocked) and reports whether `p` settled;
 * with mocked timers no delay can have elapsed meanwhile.
 */
async function settledWithoutTime(p: Promise<unknown>): Promise<{ settled: boolean; error?: unknown }> {
  let outcome: { settled: boolean; error?: unknown } = { settled: false };
  p.then(
    () => (outcome = { settled: true }),
    (error: unknown) => (outcome = { settled: true, error }),
  );
  for (let i = 0; i < 10 && !outcome.settled; i++) await new Promise((r) => setImmediate(r));
  return outcome;
}

describe('sleep', () => {
  it('resolves once its delay has passed, not before', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const slept = sleep(5);
    t.mock.timers.tick(4);
    assert.equal((await settledWithoutTime(slept)).settled, false, 'still asleep at 4 ms');
    t.mock.timers.tick(1);
    assert.equal((await settledWithoutTime(slept)).settled, true, 'awake at 5 ms');
  });

  it('returns at once for a signal that is already aborted', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    assert.equal((await settledWithoutTime(sleep(800, AbortSignal.abort()))).settled, true, 'woke with no time passed');
  });

  it('wakes when the signal aborts during the wait', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const controller = new AbortController();
    const slept = sleep(800, controller.signal);
    assert.equal((await settledWithoutTime(slept)).settled, false);
    controller.abort();
    assert.equal((await settledWithoutTime(slept)).settled, true);
  });
});

describe('backoffDelayMs', () => {
  const policy: RetryPolicy = { retries: 10, initialDelayMs: 10, maxDelayMs: 100, multiplier: 2, jitter: 0.2 };

  it('grows by the multiplier up to maxDelayMs (random at the centre = no jitter)', () => {
    const centre = () => 0.5;
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelayMs(policy, a, centre)), [10, 20, 40, 80, 100, 100, 100]);
  });

  it('puts jitter in [base·(1−jitter), base·(1+jitter)]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (attempt - 1));
        const d = backoffDelayMs(policy, attempt, () => r);
        assert.ok(d >= Math.floor(base * (1 - policy.jitter)) && d <= Math.ceil(base * (1 + policy.jitter)), `attempt ${attempt}, r ${r}: ${d}`);
      }),
    );
    assert.equal(backoffDelayMs(policy, 1, () => 0), 8);
    assert.equal(backoffDelayMs({ ...policy, jitter: 0 }, 3, () => 0.99), 40);
  });

  it('spreads delays with the random source (instances that failed together do not retry together)', () => {
    const delays = new Set([0, 0.25, 0.5, 0.75, 0.999].map((r) => backoffDelayMs(DEFAULT_RETRY, 3, () => r)));
    assert.equal(delays.size, 5);
  });

  it('never waits longer than maxDelayMs, the documented "backoff ceiling"', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        assert.ok(backoffDelayMs(policy, attempt, () => r) <= policy.maxDelayMs);
      }),
    );
  });
});
