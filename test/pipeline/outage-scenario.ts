/**
 * The vector-store outage scenario shared by the embedded-log and the Kafka variants
 * (`store-outage.test.ts`, `kafka/store-outage.test.ts`): take the store down once the stream is flowing, keep
 * it down for longer than the `store.retry` budget, bring it back, and measure what the pipeline did meanwhile
 * from the outside (its outputs) and from its own logs (the consumers' redelivery lines).
 */
import { Writable } from 'node:stream';
import type { Interaction } from '../../src/domain/events.ts';
import { createLogger, type Logger } from '../../src/logging/logger.ts';
import type { VectorStore } from '../../src/store/port.ts';
import type { OutageControl } from '../store/outage.ts';

/** A warn-level logger whose JSON lines are kept, for what the pipeline says about failed batches. */
export function capturingLogger(): {
  readonly logger: Logger;
  readonly lines: () => Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('warn', sink), lines: () => lines };
}

const REDELIVERY_MSG = 'batch handler failed; the batch is redelivered from the committed offset';

/** Redelivery log lines (one per failed batch attempt), by error code. */
export function redeliveries(lines: readonly Record<string, unknown>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of lines) {
    if (line['msg'] !== REDELIVERY_MSG) continue;
    const code = String(line['code']);
    out[code] = (out[code] ?? 0) + 1;
  }
  return out;
}

export interface OutageOptions {
  readonly control: OutageControl;
  /** Outputs (recommendations + dead letters, repeats included) seen so far. */
  readonly answered: () => number;
  /** Failed batch attempts the pipeline reported so far. */
  readonly failedBatches: () => number;
  /** Take the store down once this many outputs are out. */
  readonly startAfter: number;
  readonly outageMs: number;
  /** Bound on the whole scenario (waiting for the stream to flow, the outage, the recovery). */
  readonly timeoutMs: number;
  /** Says why waiting on is pointless (the runner stopped). */
  readonly failed?: () => string | null;
  /** Runs right after the store went down (e.g. feeds the catalogue topic, whose writes must wait too). */
  readonly whileDown?: () => Promise<void>;
}

export interface OutageReport {
  readonly outageMs: number;
  /** Outputs that came out while the store was down (batches that had passed the store before it went). */
  readonly answeredWhileDown: number;
  /** Batch attempts that failed during the outage. */
  readonly failedBatches: number;
  /** From `up()` to the first new output (a figure to report, not to bound: it depends on the machine's load). */
  readonly recoveryMs: number;
  /** Outputs seen after `up()` when the scenario returned: more than 0, or it throws. */
  readonly answeredAfterUp: number;
}

/** Runs the outage; resolves once outputs flow again after it. */
export async function injectOutage(o: OutageOptions): Promise<OutageReport> {
  const deadline = Date.now() + o.timeoutMs;
  const until = async (what: string, check: () => boolean, intervalMs = 20): Promise<void> => {
    for (;;) {
      const why = o.failed?.();
      if (why) throw new Error(`while waiting for ${what}: ${why}`);
      if (check()) return;
      if (Date.now() > deadline)
        throw new Error(`${what}: not within ${o.timeoutMs} ms of the scenario's start`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
  await until(`${o.startAfter} outputs before the outage`, () => o.answered() >= o.startAfter);
  const failedBefore = o.failedBatches();
  await o.control.down();
  const downAt = Date.now();
  const answeredAtDown = o.answered();
  await o.whileDown?.();
  // The store stays down until a batch has failed on it, however long a busy machine takes to get there, so
  // the scenario always is an outage the pipeline saw; `outageMs` is the least it lasts, not a bound.
  await until('a failed batch during the outage', () => o.failedBatches() > failedBefore);
  await new Promise((r) => setTimeout(r, Math.max(0, downAt + o.outageMs - Date.now())));
  const answeredAtUp = o.answered();
  const failedBatches = o.failedBatches() - failedBefore;
  await o.control.up();
  const upAt = Date.now();
  await until('outputs after the outage', () => o.answered() > answeredAtUp, 10);
  return {
    outageMs: upAt - downAt,
    answeredWhileDown: answeredAtUp - answeredAtDown,
    failedBatches,
    recoveryMs: Date.now() - upAt,
    answeredAfterUp: o.answered() - answeredAtUp,
  };
}

/**
 * Σ interactionCount over the users of `good` minus the number of `good` events: how many were learned twice
 * (a batch whose store writes went through in part before it failed, then again); negative = some were lost.
 */
export async function relearned(store: VectorStore, good: readonly Interaction[]): Promise<number> {
  const profiles = await store.getUsers([...new Set(good.map((e) => e.userId))]);
  let learned = 0;
  for (const p of profiles.values()) learned += p.interactionCount;
  return learned - good.length;
}
