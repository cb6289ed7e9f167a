import type { CooccurrenceRows, HistoryRows, ItemProfile, LiveBatch, Neighbour, UserProfile } from '../port.ts';
import { KeyScratch } from '../../util/key-scratch.ts';
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

  /** The histories of the held users among `userIds` (each once) as item slots (live: read them at once). */
  historyRows(userIds: readonly string[]): HistoryRows {
    const s = this.state;
    const slots: number[] = [];
    for (const id of userIds) {
      const u = s.userSlot(id);
      if (u >= 0 && !slots.includes(u)) slots.push(u);
    }
    return {
      rows: slots.length,
      length: (r) => s.recentCount(slots[r]!),
      key: (r, e) => s.recentItem(slots[r]!, e),
      keySpace: s.items.extent,
      keyOf: (id) => s.items.slotOf(id),
    };
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
    // The batch's raised items grow with the batch: only their best k can make the cut, so they are selected
    // by slot and score (ids read on ties only) before any id or object is built. Same order, same result.
    const generation = this.raisedMark.begin(s.items.extent);
    const mark = this.raisedMark.stamps;
    if (this.best.length < k) {
      this.best = new Int32Array(k);
      this.bestScore = new Float64Array(k);
    }
    const { best, bestScore } = this;
    const before = (score: number, slot: number, than: number): boolean =>
      score > bestScore[than]! || (score === bestScore[than] && s.items.idOf(slot) < s.items.idOf(best[than]!));
    let held = 0;
    for (let r = 0; r < raised.length; r++) {
      const i = raised[r]!;
      mark[i] = generation;
      const score = decayedCount(s.longLog[i]!, nowMs, halfLife);
      if (held === k && !before(score, i, k - 1)) continue;
      let at = held < k ? held++ : k - 1;
      while (at > 0 && before(score, i, at - 1)) {
        best[at] = best[at - 1]!;
        bestScore[at] = bestScore[at - 1]!;
        at--;
      }
      best[at] = i;
      bestScore[at] = score;
    }
    const merged: Neighbour[] = [];
    for (let b = 0; b < held; b++) merged.push({ id: s.items.idOf(best[b]!), score: bestScore[b]! });
    for (const n of stored) {
      const i = s.items.slotOf(n.id);
      if (i < 0 || mark[i] !== generation) merged.push(n);
    }
    merged.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return merged.length > k ? merged.slice(0, k) : merged;
  }

  /** `popularItems`' reusable arrays: the raised items stamped per slot, and the best `k` of them so far. */
  private readonly raisedMark = new KeyScratch();
  private best = new Int32Array(0);
  private bestScore = new Float64Array(0);

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
