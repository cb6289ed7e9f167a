/**
 * Bookkeeping of the tiered store's hot entries (the profiles themselves live in the hot `EmbeddedStore`):
 * for each id, when and in which ownership epoch its state was taken from Qdrant or written here, and a
 * sequence number that orders every install, so a read that started earlier never replaces a newer state.
 */

export interface EntryState {
  /** Ownership epoch (`TieredStore.ownershipChanged` counts them) in which the state was installed. */
  readonly epoch: number;
  /** Wall-clock ms of the install: what the refresh of borrowed entries ages. */
  readonly atMs: number;
  /** true = written by this process (acknowledged by Qdrant); false = borrowed (read from Qdrant). */
  readonly written: boolean;
  /** Install order across the whole store (`EntryBook.seq`). */
  readonly seq: number;
}

export class EntryBook {
  private readonly states = new Map<string, EntryState>();

  constructor(private readonly next: () => number) {}

  get(id: string): EntryState | undefined {
    return this.states.get(id);
  }

  /** The hot tier no longer holds the id (evicted): it is read again on next use. */
  forget(id: string): void {
    this.states.delete(id);
  }

  record(id: string, epoch: number, atMs: number, written: boolean): void {
    this.states.set(id, { epoch, atMs, written, seq: this.next() });
  }

  /**
   * True when a state read from the durable tier by a request that started at `sinceSeq` may be installed:
   * nothing was installed for the id after the request started (a write here, or a newer read).
   */
  acceptsReadFrom(id: string, sinceSeq: number): boolean {
    const state = this.states.get(id);
    return state === undefined || state.seq <= sinceSeq;
  }
}

/**
 * Ids the durable tier did not hold when last asked, so that unknown ids (negative samples, items of a
 * catalogue not loaded yet) do not cost a round trip on every batch. Entries expire after `ttlMs` (another
 * process may create the id) and the oldest go first beyond `limit`, so memory stays bounded.
 */
export class AbsentIds {
  private readonly expiry = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly limit: number,
  ) {}

  has(id: string, nowMs: number): boolean {
    const until = this.expiry.get(id);
    if (until === undefined) return false;
    if (until > nowMs) return true;
    this.expiry.delete(id);
    return false;
  }

  add(id: string, nowMs: number): void {
    // Re-inserting moves the id to the end of the Map's order, which is the eviction order.
    this.expiry.delete(id);
    this.expiry.set(id, nowMs + this.ttlMs);
    if (this.expiry.size > this.limit) {
      const oldest = this.expiry.keys().next();
      if (!oldest.done) this.expiry.delete(oldest.value);
    }
  }

  delete(id: string): void {
    this.expiry.delete(id);
  }

  clear(): void {
    this.expiry.clear();
  }
}
