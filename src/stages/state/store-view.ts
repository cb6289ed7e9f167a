import type { BatchReader, ItemDelta, ItemProfile, Neighbour, UserProfile, VectorStore } from '../../store/port.ts';

/**
 * How item deltas are folded into a profile; the same functions the store adapters use (`item-merge.ts`):
 * `clone` makes a private copy the view may change, `apply` folds a delta into it in place.
 */
export interface ItemMerger {
  clone(profile: ItemProfile | undefined, itemId: string): MutableItem;
  apply(item: MutableItem, delta: ItemDelta): void;
  /** The item's long-window popularity at `nowMs`: the score `VectorStore.popularItems` gives it. */
  popularity(item: ItemProfile, nowMs: number): number;
}

/** An item profile the view owns and changes in place (`MutableItemProfile` in the store). */
export type MutableItem = ItemProfile & { cooccurrence: Map<string, number> };

/**
 * The stages' view of the store while one batch is processed: profiles are read from the store once per
 * batch (and on a miss), changed here as each event is learned, and written back together by `commit()`.
 *
 * Why: each event must be ranked on the state *after* learning it and *before* learning the next one (the
 * stream never shows a stage the future), while a remote store wants one round trip per batch, not per event.
 * Vector searches go to the store itself and so see the state as of the previous batch; the evidence for
 * each candidate is computed from the profiles here, which are exact as of the event, and so is the popularity
 * ranking (`popularItems` lays this batch's interactions over the store's ranking).
 *
 * Item changes are folded lazily: learning only needs item vectors, which are kept as a small overlay, and a
 * whole item profile (with its co-occurrence map) is copied and brought up to date only when a reader asks
 * for it. Copying profiles on every delta was the largest cost of learning.
 */
export class StoreView implements BatchReader {
  private readonly users = new Map<string, UserProfile>();
  /** Profiles as the store returned them; never changed here. */
  private readonly items = new Map<string, ItemProfile>();
  /** Ids asked of the store that it does not hold, so a delta may create them. */
  private readonly absentItems = new Set<string>();
  /** Private copies with every delta so far folded in. */
  private readonly folded = new Map<string, MutableItem>();
  /** Deltas not yet folded into `folded`, per item. */
  private readonly unfolded = new Map<string, ItemDelta[]>();
  /** Current vectors of items changed in this view. */
  private readonly vectors = new Map<string, Float32Array>();
  private readonly dirtyUsers = new Set<string>();
  /** Items whose popularity deltas in this view raised since the last commit. */
  private readonly popularityRaised = new Set<string>();
  private pendingItemDeltas: ItemDelta[] = [];

  /**
   * @param options.applyItemDeltas false = `commit()` writes users only and leaves the batch's item deltas to
   *   the caller, who routes them to the item's single writer (`stages/item-deltas`, `store.itemWrites =
   *   routed`); the deltas still change what this view shows.
   */
  constructor(
    readonly store: VectorStore,
    private readonly mergeItem: ItemMerger,
    private readonly options: { readonly applyItemDeltas: boolean } = { applyItemDeltas: true },
  ) {}

  /** Item deltas recorded since the last commit; with `itemDeltasSince`, tells which deltas an event made. */
  get itemDeltaCount(): number {
    return this.pendingItemDeltas.length;
  }

  /** The item deltas recorded after the first `from` (an earlier `itemDeltaCount`), in order. */
  itemDeltasSince(from: number): ItemDelta[] {
    return this.pendingItemDeltas.slice(from);
  }

  /** Loads what is not cached yet; ids the store does not know stay absent. */
  async load(userIds: Iterable<string>, itemIds: Iterable<string>): Promise<void> {
    const missingUsers = [...new Set(userIds)].filter((id) => !this.users.has(id));
    const missingItems = [...new Set(itemIds)].filter((id) => !this.items.has(id) && !this.absentItems.has(id));
    const [users, items] = await Promise.all([
      missingUsers.length ? this.store.getUsers(missingUsers) : new Map<string, UserProfile>(),
      missingItems.length ? this.store.getItems(missingItems) : new Map<string, ItemProfile>(),
    ]);
    for (const [id, profile] of users) this.users.set(id, profile);
    for (const [id, profile] of items) this.items.set(id, profile);
    for (const id of missingItems) if (!items.has(id)) this.absentItems.add(id);
  }

  user(userId: string): UserProfile | undefined {
    return this.users.get(userId);
  }

  /** The item as of now, with every delta applied through this view. */
  item(itemId: string): ItemProfile | undefined {
    const pending = this.unfolded.get(itemId);
    if (pending) {
      let item = this.folded.get(itemId);
      if (!item) this.folded.set(itemId, (item = this.mergeItem.clone(this.items.get(itemId), itemId)));
      for (const delta of pending) this.mergeItem.apply(item, delta);
      this.unfolded.delete(itemId);
    }
    return this.folded.get(itemId) ?? this.items.get(itemId);
  }

  /**
   * The item's current embedding, or undefined for an item that has none yet (unknown, or known only from
   * its catalogue record): the learner then seeds it. Cheap: no profile is copied.
   */
  itemVector(itemId: string): Float32Array | undefined {
    const changed = this.vectors.get(itemId);
    if (changed) return changed;
    const stored = this.items.get(itemId);
    return stored && stored.firstSeenMs <= stored.lastSeenMs ? stored.vector : undefined;
  }

  async usersById(userIds: readonly string[]): Promise<Map<string, UserProfile>> {
    await this.load(userIds, []);
    return pick(userIds, (id) => this.users.get(id));
  }

  async itemsById(itemIds: readonly string[]): Promise<Map<string, ItemProfile>> {
    await this.load([], itemIds);
    return pick(itemIds, (id) => this.item(id));
  }

  putUser(profile: UserProfile): void {
    this.users.set(profile.userId, profile);
    this.dirtyUsers.add(profile.userId);
  }

  /** Records a delta; the item must have been loaded (or found absent) first. */
  applyItemDelta(delta: ItemDelta): void {
    const id = delta.itemId;
    if (!this.items.has(id) && !this.absentItems.has(id)) {
      // Folding into an unloaded item would cache a blank profile in place of the stored one.
      throw new Error(`item ${id} was not loaded into this view before being changed`);
    }
    this.trackVector(delta);
    if ((delta.interactions ?? 0) > 0) this.popularityRaised.add(id);
    const pending = this.unfolded.get(id);
    if (pending) pending.push(delta);
    else this.unfolded.set(id, [delta]);
    this.pendingItemDeltas.push(delta);
  }

  /** Mirrors the vector rules of `item-merge.ts`: only an item's first sighting may seed its vector. */
  private trackVector(delta: ItemDelta): void {
    if (!delta.vectorDelta && !delta.initialVector) return;
    let vector = this.vectors.get(delta.itemId);
    if (!vector) {
      const current = this.itemVector(delta.itemId);
      const seed = current ?? delta.initialVector ?? new Float32Array(this.item(delta.itemId)?.vector.length ?? delta.vectorDelta!.length);
      vector = Float32Array.from(seed);
      this.vectors.set(delta.itemId, vector);
    }
    const step = delta.vectorDelta;
    if (step) for (let i = 0; i < vector.length; i++) vector[i]! += step[i]!;
  }

  searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.store.searchItems(query, k, exclude);
  }

  searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.store.searchUsers(query, k, exclude);
  }

  /**
   * The `k` most popular items as of now: the store's ranking (as of the last commit) with this view's
   * interactions laid over it, so an event's popular candidates count every earlier event and the event
   * itself, whatever the batch boundaries. Without this the ranking lagged by the events of the batch so far,
   * a lag that grows with the batch and so with how slow the store is: on the same stream Qdrant's full
   * 500-record batches gave other popular candidates than the embedded store's smaller ones.
   *
   * Exact, not an approximation: popularity only grows, so an item the store did not rank in its top `k` and
   * this view did not raise is beaten by `k` items that are at least as popular now; the top `k` is among the
   * store's `k` and the raised items. Order: score descending, ties by id (the stores' order). With routed item
   * writes, other batches' interactions count once their writer has applied them, as for every other profile.
   */
  async popularItems(k: number, nowMs: number): Promise<Neighbour[]> {
    const stored = await this.store.popularItems(k, nowMs);
    if (this.popularityRaised.size === 0 || k === 0) return stored;
    const raised: Neighbour[] = [...this.popularityRaised].map((id) => ({
      id,
      score: this.mergeItem.popularity(this.item(id)!, nowMs),
    }));
    const merged = stored.filter((n) => !this.popularityRaised.has(n.id)).concat(raised);
    merged.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return merged.slice(0, k);
  }

  /**
   * Writes every change made through this view (item deltas only when `applyItemDeltas`), then forgets
   * everything it cached, so that later reads see the store's state (which now includes these changes, or
   * will once the routed item deltas are applied) and nothing is applied twice.
   */
  async commit(): Promise<void> {
    const users = [...this.dirtyUsers].map((id) => this.users.get(id)!);
    const deltas = this.pendingItemDeltas;
    this.pendingItemDeltas = [];
    this.dirtyUsers.clear();
    this.popularityRaised.clear();
    for (const cache of [this.users, this.items, this.folded, this.unfolded, this.vectors]) cache.clear();
    this.absentItems.clear();
    const itemDeltas = this.options.applyItemDeltas ? deltas : [];
    if (this.store.writeBatch) {
      // One unit: a store that writes through to a remote tier shows either both halves or neither, so a batch
      // redelivered after a failed write is learned from the same state (`store/tiered`).
      if (users.length || itemDeltas.length) await this.store.writeBatch(users, itemDeltas);
      return;
    }
    // allSettled, not all: the batch must not be handed back for redelivery while one of its writes is still
    // in flight, or the redelivery could read that write's result and learn the batch twice.
    const results = await Promise.allSettled([
      users.length ? this.store.putUsers(users) : undefined,
      itemDeltas.length ? this.store.applyItemDeltas(itemDeltas) : undefined,
    ]);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }
}

function pick<V>(ids: readonly string[], get: (id: string) => V | undefined): Map<string, V> {
  const out = new Map<string, V>();
  for (const id of ids) {
    const value = get(id);
    if (value !== undefined) out.set(id, value);
  }
  return out;
}
