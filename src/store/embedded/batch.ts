import type { CooccurrenceRows, ItemProfile, LiveBatch, Neighbour, UserProfile } from '../port.ts';
import { decayedCount } from '../popularity.ts';
import type { BatchChanges, CollaborativeState } from './state/collaborative-state.ts';

/** What a batch needs of the store that opened it. */
export interface BatchHost {
  searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]>;
  searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]>;
  /** The popularity ranking as of the last commit, scored at `nowMs`. */
  popularNow(k: number, nowMs: number): Neighbour[];
  /** Takes a committed batch's changes (indexes, ranking). */
  publish(changes: BatchChanges): void;
}

/**
 * One batch over the embedded store's live state: the learner changes `state` in place, the ranking stages
 * read it here as of the event being handled (the no-future rule holds because events are learned and ranked
 * one at a time), and the batch ends in `commit` or `rollback`. Vector searches see the indexes as of the
 * previous commit, as on every store; popularity lays this batch's raised items over the store's ranking, so
 * it is exact at every event.
 */
export class EmbeddedBatch implements LiveBatch {
  private ended = false;

  constructor(
    readonly state: CollaborativeState,
    private readonly store: BatchHost,
    private readonly onEnd: () => void,
  ) {}

  user(userId: string): UserProfile | undefined {
    const u = this.state.userSlot(userId);
    return u >= 0 ? this.state.userProfile(u) : undefined;
  }

  async usersById(userIds: readonly string[]): Promise<Map<string, UserProfile>> {
    return profilesOf(userIds, (id) => this.state.userSlot(id), (u) => this.state.lazyUserProfile(u));
  }

  async itemsById(itemIds: readonly string[]): Promise<Map<string, ItemProfile>> {
    return profilesOf(itemIds, (id) => this.state.knownItem(id), (i) => this.state.lazyItemProfile(i));
  }

  cooccurrenceRows(itemIds: readonly string[]): CooccurrenceRows {
    return this.state.cooccurrenceRows(itemIds);
  }

  searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.store.searchItems(query, k, exclude);
  }

  searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.store.searchUsers(query, k, exclude);
  }

  /**
   * The `k` most popular items as of now: the store's ranking as of the last commit with this batch's raised
   * items laid over it. Exact: popularity only grows, so an item neither in the store's top `k` nor raised here
   * is beaten by `k` items at least as popular now. Order: score descending, ties by id (the stores' order).
   */
  async popularItems(k: number, nowMs: number): Promise<Neighbour[]> {
    const stored = this.store.popularNow(k, nowMs);
    const raised = this.state.raisedInBatch();
    if (raised.length === 0 || k === 0) return stored;
    const s = this.state;
    const halfLife = s.options.popularityLongHalfLifeMs;
    const raisedIds = new Set<string>();
    const merged: Neighbour[] = [];
    for (const i of raised) {
      const id = s.items.idOf(i);
      raisedIds.add(id);
      merged.push({ id, score: decayedCount(s.longLog[i]!, nowMs, halfLife) });
    }
    for (const n of stored) if (!raisedIds.has(n.id)) merged.push(n);
    merged.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return merged.slice(0, k);
  }

  /** Nothing to make durable: a checkpoint takes the state between batches. */
  async prepare(): Promise<void> {}

  async commit(): Promise<void> {
    this.commitNow();
  }

  /** `commit`, synchronously (the tiered store commits its hot tier right after Qdrant acknowledged). */
  commitNow(): void {
    this.end();
    this.store.publish(this.state.commit());
  }

  /** Slots of every user and item the batch changed so far (for a store that writes them elsewhere). */
  touched(): { readonly users: readonly number[]; readonly items: readonly number[]; readonly vectorOnly: readonly number[] } {
    return this.state.touchedInBatch();
  }

  rollback(): void {
    this.end();
    this.state.rollback();
  }

  private end(): void {
    if (this.ended) throw new Error('this batch has already ended');
    this.ended = true;
    this.onEnd();
  }
}

/** The profiles of the held ids among `ids`, built by `build` from their slots (`slotOf`: -1 when not held). */
export function profilesOf<P>(ids: readonly string[], slotOf: (id: string) => number, build: (slot: number) => P): Map<string, P> {
  const out = new Map<string, P>();
  for (const id of ids) {
    const slot = slotOf(id);
    if (slot >= 0) out.set(id, build(slot));
  }
  return out;
}
