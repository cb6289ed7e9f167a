import type { Interaction } from '../src/domain/events.ts';
import type { Pipeline } from '../src/main.ts';

/**
 * Polls `check` until it returns a truthy value or the deadline passes; tests wait with this, never with sleeps.
 * The deadline only guards against a hang: it is generous by default (a loaded 2-core machine runs many times
 * slower than an idle one), and a test must never pass or fail on how soon the condition came true.
 */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 60_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}

/** A short random suffix so parallel tests never share topics, groups or files. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The i-th event of a tiny world (3 users, 5 items, a millisecond apart from `startMs`) for pipeline tests. */
export function tinyWorldEvent(i: number, startMs: number): Interaction {
  return { eventId: `e${i}`, userId: `u${i % 3}`, itemId: `i${i % 5}`, type: 'view', value: null, timestampMs: startMs + i, context: {} };
}

/** Stops an in-process pipeline the way `starstream run` does: runner, scorers (an experiment's last look), store. */
export async function closePipeline(pipeline: Pipeline): Promise<void> {
  await pipeline.runner.stop();
  await pipeline.scorers.close();
  await pipeline.engine.store.close();
}

/** Starts `pipeline` unless it runs already, and waits until it has processed `expected` records. */
export async function runUntil(pipeline: Pipeline, expected: number, timeoutMs = 120_000): Promise<void> {
  if (pipeline.runner.status === 'created') await pipeline.runner.start();
  await eventually(() => pipeline.runner.processedRecords >= expected, timeoutMs);
}
