/**
 * Serializes work per key inside one process: `run(keys, fn)` starts `fn` once every earlier `run` that shares
 * a key has settled. All keys of a call are claimed at once (synchronously), so a call only ever waits for calls
 * that claimed before it: the waits form a DAG and cannot deadlock, whatever the key order.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Number of keys with work queued or running (for tests and diagnostics). */
  get size(): number {
    return this.tails.size;
  }

  async run<T>(keys: Iterable<string>, fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    const previous: Promise<void>[] = [];
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    for (const key of unique) {
      const tail = this.tails.get(key);
      if (tail) previous.push(tail);
      this.tails.set(key, mine);
    }
    try {
      await Promise.all(previous);
      return await fn();
    } finally {
      release();
      for (const key of unique) {
        if (this.tails.get(key) === mine) this.tails.delete(key);
      }
    }
  }
}
