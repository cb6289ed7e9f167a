import {
  applyItemDelta,
  applyItemMetadata,
  cloneItem,
  validateItemDelta,
  type ItemMergeLimits,
} from '../../src/store/item-merge.ts';
import type { ItemDelta, ItemMetadata, ItemProfile, VectorStore } from '../../src/store/port.ts';

/**
 * A `VectorStore` whose item writes are what the Qdrant adapter's are across processes: a read-modify-write
 * that is not atomic (retrieve the items, fold the deltas in, upsert the whole items), with an await between
 * the read and the write, as a network round trip has. Two writers of one item at once lose an update, which
 * the wrapper counts (`lostUpdates`: writes that overwrote a version they had not read).
 *
 * Items live here; users, searches and everything else are delegated to `inner` (the tests that use it run
 * with ranking off, so item searches, which would miss these items, are never made).
 */
export interface RacyStore extends VectorStore {
  /** Item writes that replaced a version written after their read. */
  readonly lostUpdates: number;
}

export function racyItemStore(inner: VectorStore, limits: ItemMergeLimits, delayMs = 1): RacyStore {
  const items = new Map<string, { profile: ItemProfile; version: number }>();
  let lostUpdates = 0;
  const pause = () => new Promise((resolve) => setTimeout(resolve, delayMs));

  async function readModifyWrite(
    ids: readonly string[],
    change: (current: ItemProfile | undefined, id: string) => ItemProfile,
  ): Promise<void> {
    const read = new Map(ids.map((id) => [id, items.get(id)]));
    await pause();
    for (const [id, before] of read) {
      const now = items.get(id);
      if (now !== undefined && now.version !== before?.version) lostUpdates++;
      items.set(id, { profile: change(before?.profile, id), version: (now?.version ?? 0) + 1 });
    }
  }

  return {
    kind: inner.kind,
    get lostUpdates() {
      return lostUpdates;
    },
    init: () => inner.init(),
    getUsers: (ids) => inner.getUsers(ids),
    putUsers: (users) => inner.putUsers(users),
    searchItems: (query, k, exclude) => inner.searchItems(query, k, exclude),
    searchUsers: (query, k, exclude) => inner.searchUsers(query, k, exclude),
    popularItems: (k, nowMs) => inner.popularItems(k, nowMs),
    flush: () => inner.flush(),
    close: () => inner.close(),
    async getItems(ids) {
      const out = new Map<string, ItemProfile>();
      for (const id of ids) {
        const entry = items.get(id);
        if (entry) out.set(id, entry.profile);
      }
      return out;
    },
    async applyItemDeltas(deltas: readonly ItemDelta[]) {
      for (const d of deltas) validateItemDelta(d, limits.dimension);
      const byItem = new Map<string, ItemDelta[]>();
      for (const d of deltas) byItem.set(d.itemId, [...(byItem.get(d.itemId) ?? []), d]);
      await readModifyWrite([...byItem.keys()], (current, id) => {
        const item = cloneItem(current, id, limits.dimension);
        for (const d of byItem.get(id)!) applyItemDelta(item, d, limits);
        return item;
      });
    },
    async putItemMetadata(metadata: readonly ItemMetadata[]) {
      const byId = new Map(metadata.map((m) => [m.itemId, m]));
      await readModifyWrite([...byId.keys()], (current, id) =>
        applyItemMetadata(current, byId.get(id)!, limits.dimension),
      );
    },
    async counts() {
      return { users: (await inner.counts()).users, items: items.size };
    },
  };
}
