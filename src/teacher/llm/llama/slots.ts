/**
 * A fixed set of slots handed out first come, first served. The embedded backend keeps one llama.cpp context
 * sequence per slot: a sequence holds one conversation's KV cache and evaluates one request at a time, so
 * requests beyond the slots wait here (bounded by their abort signal) instead of interleaving on a sequence.
 */
export class Slots<T> {
  private readonly free: T[];
  private readonly waiters: { grant: (slot: T) => void; fail: (err: unknown) => void }[] = [];
  private closedReason: unknown = null;

  constructor(slots: readonly T[]) {
    this.free = [...slots];
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** The next free slot; rejects with `signal.reason` when the signal aborts first, or the close reason. */
  acquire(signal: AbortSignal): Promise<T> {
    if (this.closedReason !== null) return Promise.reject(this.closedReason);
    if (signal.aborted) return Promise.reject(signal.reason);
    const slot = this.free.shift();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        grant: (s: T): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
        fail: (err: unknown): void => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(slot: T): void {
    const next = this.waiters.shift();
    if (next) next.grant(slot);
    else this.free.push(slot);
  }

  /** Rejects every waiter and every later `acquire` with `reason`. */
  close(reason: unknown): void {
    this.closedReason = reason;
    for (const waiter of this.waiters.splice(0)) waiter.fail(reason);
  }
}
