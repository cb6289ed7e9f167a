import { FatalError } from '../errors/index.ts';
import type { BatchHandler, ConsumedBatch } from '../eventlog/port.ts';

/**
 * Watches the batches the runner's consumers hand to their handlers, to tell a stream that flows from one
 * that is stuck on a batch. Every adapter redelivers a failed batch from the partition's committed offset
 * (the port's contract), so "the same batch again" is: same consumer, topic, partition and first offset.
 *
 * A batch is watched from the start of its first attempt until an attempt resolves. It is stuck once it has
 * been watched longer than `stuckMs`: failing again and again, or one attempt that never ends (a hung call).
 * A partition can be revoked while its batch fails, and this consumer then never sees it again; a batch whose
 * last attempt ended more than `stuckMs` ago and that is not running is therefore forgotten, not stuck. That
 * is sound as long as `stuckMs` is longer than the adapters' redelivery ceiling
 * (`eventLog.*.maxRedeliveryDelayMs`), so that a batch still being retried is always tried again in time.
 */

export interface StuckBatch {
  readonly consumer: string;
  readonly topic: string;
  readonly partition: number;
  /** First offset of the batch. */
  readonly offset: string;
  /** When its first attempt started (the watch's clock). */
  readonly sinceMs: number;
  /** Attempts that failed in a row. */
  readonly failures: number;
}

interface Watched {
  readonly consumer: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly sinceMs: number;
  failures: number;
  running: boolean;
  lastEndMs: number;
}

export class BatchWatch {
  private readonly batches = new Map<string, Watched>();

  constructor(
    private readonly stuckMs: number,
    private readonly clock: () => number,
  ) {}

  /**
   * The handler, watched. `onRetry` is told of every attempt that failed with a non-fatal error (the adapter
   * redelivers it); a fatal one stops the consumer, which readiness reports on its own.
   */
  wrap(consumer: string, handler: BatchHandler, onRetry: (consumer: string) => void): BatchHandler {
    return async (batch) => {
      const watched = this.started(consumer, batch);
      try {
        await handler(batch);
      } catch (err) {
        watched.running = false;
        watched.lastEndMs = this.clock();
        if (err instanceof FatalError) this.batches.delete(keyOf(consumer, batch));
        else {
          watched.failures++;
          onRetry(consumer);
        }
        throw err;
      }
      this.batches.delete(keyOf(consumer, batch));
    };
  }

  /** The batch stuck longest, or null when none has been watched for longer than `stuckMs`. */
  stuck(): StuckBatch | null {
    let oldest: Watched | null = null;
    for (const b of this.live()) {
      if (this.clock() - b.sinceMs > this.stuckMs && (!oldest || b.sinceMs < oldest.sinceMs)) oldest = b;
    }
    return oldest && toStuck(oldest);
  }

  /** The most attempts in a row that failed, over the batches of `consumer` still being retried; 0 when none. */
  failures(consumer: string): number {
    let most = 0;
    for (const b of this.live()) if (b.consumer === consumer) most = Math.max(most, b.failures);
    return most;
  }

  private started(consumer: string, batch: ConsumedBatch): Watched {
    const key = keyOf(consumer, batch);
    const offset = batch.records[0]?.offset ?? '';
    const known = this.batches.get(key);
    if (known && known.offset === offset) {
      known.running = true;
      return known;
    }
    // Another first offset on the partition: the old batch was committed by someone (a previous owner of the
    // partition, after a rebalance) or is gone; this one starts its own watch.
    const now = this.clock();
    const watched: Watched = { consumer, topic: batch.topic, partition: batch.partition, offset, sinceMs: now, failures: 0, running: true, lastEndMs: now };
    this.batches.set(key, watched);
    return watched;
  }

  /** The watched batches still being tried; the others (their partition went elsewhere) are dropped. */
  private *live(): Generator<Watched> {
    const now = this.clock();
    for (const [key, b] of this.batches) {
      if (b.running || now - b.lastEndMs <= this.stuckMs) yield b;
      else this.batches.delete(key);
    }
  }
}

function keyOf(consumer: string, batch: ConsumedBatch): string {
  return `${consumer}\u0000${batch.topic}\u0000${batch.partition}`;
}

function toStuck(b: Watched): StuckBatch {
  return { consumer: b.consumer, topic: b.topic, partition: b.partition, offset: b.offset, sinceMs: b.sinceMs, failures: b.failures };
}
