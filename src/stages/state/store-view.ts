import type { ItemDelta, ItemProfile, Neighbour, UserProfile, VectorStore } from '../../store/port.ts';

/**
 * How item deltas are folded into a profile; the same functions the store adapters use (`item-merge.ts`):
 * `clone` makes a private copy the view may change, `apply` folds a delta into it in place.
 */
export interface ItemMerger {
  clone(profile: ItemProfile | undefined, itemId: string): MutableItem;
  apply(item: MutableItem, delta: ItemDelta): void;
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
 * each candidate is then computed from the profiles here, which are exact as of the event.
 */
export class StoreView {
  private readonly users = new Map<string, UserProfile>();
  private readonly items = new Map<string, ItemProfile>();
  /** Ids asked of the store that it does not hold, so a delta may create them. */
  private readonly absentItems = new Set<string>();
  /** Items this view has cloned: later deltas change them in place instead of copying again. */
  private readonly owned = new Map<string, MutableItem>();
  private readonly dirtyUsers = new Set<string>();
  private pendingItemDeltas: ItemDelta[] = [];

  constructor(
    readonly store: VectorStore,
    private readonly mergeItem: ItemMerger,
  ) {}

  /** Loads what is not cached yet; ids the store does not know stay absent. */
  async load(userIds: Iterable<string>, itemIds: Iterable<string>): Promise<void> {
    const missingUsers = [...new Set(userIds)].filter((id) => !this.users.has(id));
    const missingItems = [...new Set(itemIds)].filter((id) => !this.items.has(id));
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

  item(itemId: string): ItemProfile | undefined {
    return this.items.get(itemId);
  }

  async usersById(userIds: readonly string[]): Promise<Map<string, UserProfile>> {
    await this.load(userIds, []);
    return pick(this.users, userIds);
  }

  async itemsById(itemIds: readonly string[]): Promise<Map<string, ItemProfile>> {
    await this.load([], itemIds);
    return pick(this.items, itemIds);
  }

  putUser(profile: UserProfile): void {
    this.users.set(profile.userId, profile);
    this.dirtyUsers.add(profile.userId);
  }

  /** Applies a delta to the cached item; the item must have been loaded (or found absent) first. */
  applyItemDelta(delta: ItemDelta): ItemProfile {
    if (!this.items.has(delta.itemId) && !this.absentItems.has(delta.itemId)) {
      // Merging into an unloaded item would cache a blank profile in place of the stored one.
      throw new Error(`item ${delta.itemId} was not loaded into this view before being changed`);
    }
    let item = this.owned.get(delta.itemId);
    if (!item) {
      item = this.mergeItem.clone(this.items.get(delta.itemId), delta.itemId);
      this.owned.set(delta.itemId, item);
      this.items.set(delta.itemId, item);
    }
    this.mergeItem.apply(item, delta);
    this.pendingItemDeltas.push(delta);
    return item;
  }

  searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.store.searchItems(query, k, exclude);
  }

  searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.store.searchUsers(query, k, exclude);
  }

  popularItems(k: number, nowMs: number): Promise<Neighbour[]> {
    return this.store.popularItems(k, nowMs);
  }

  /** Writes every change made through this view; the view stays usable (and cached) afterwards. */
  async commit(): Promise<void> {
    const users = [...this.dirtyUsers].map((id) => this.users.get(id)!);
    const deltas = this.pendingItemDeltas;
    this.dirtyUsers.clear();
    this.pendingItemDeltas = [];
    await Promise.all([
      users.length ? this.store.putUsers(users) : undefined,
      deltas.length ? this.store.applyItemDeltas(deltas) : undefined,
    ]);
  }
}

function pick<V>(from: ReadonlyMap<string, V>, ids: readonly string[]): Map<string, V> {
  const out = new Map<string, V>();
  for (const id of ids) {
    const value = from.get(id);
    if (value !== undefined) out.set(id, value);
  }
  return out;
}
