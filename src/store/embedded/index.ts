import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { FatalError } from '../../errors/index.ts';
import {
  applyValidItemDelta,
  applyItemMetadata,
  cloneItem,
  validateItemDelta,
  type ItemMergeLimits,
  type MutableItemProfile,
} from '../item-merge.ts';
import { decayedCount } from '../popularity.ts';
import type {
  ItemDelta,
  ItemMetadata,
  ItemProfile,
  Neighbour,
  StoreCounts,
  UserProfile,
  VectorStore,
} from '../port.ts';
import { VectorIndex, type VectorIndexOptions } from './vector-index.ts';

/**
 * The embedded vector + graph store: profiles in memory, vectors in a `VectorIndex` per collection, and an
 * optional snapshot file so a restart resumes where the last `flush()` left off.
 *
 * One process owns it, so "concurrent" item deltas are simply applied in call order on the event loop; the
 * merge rules (`item-merge.ts`) are the same as Qdrant's. Reads hand out the stored objects without copying
 * and item deltas change them in place: a profile read earlier shows later writes. Callers treat profiles as
 * read-only (the stages' `StoreView` copies before changing anything).
 */

export interface EmbeddedStoreOptions extends ItemMergeLimits, Omit<VectorIndexOptions, 'dimension'> {
  /** Snapshot file; undefined = memory only. */
  readonly path?: string;
  /** A computed popularity ranking is reused until this many item deltas have been applied since. */
  readonly popularRefreshDeltas?: number;
}

const SNAPSHOT_VERSION = 1;

interface Snapshot {
  readonly version: number;
  readonly dimension: number;
  readonly users: UserProfile[];
  readonly items: ItemProfile[];
}

export function createEmbeddedStore(options: EmbeddedStoreOptions): VectorStore {
  return new EmbeddedStore(options);
}

class EmbeddedStore implements VectorStore {
  readonly kind = 'embedded' as const;
  private readonly users = new Map<string, UserProfile>();
  private readonly items = new Map<string, ItemProfile>();
  private readonly userIndex: VectorIndex;
  private readonly itemIndex: VectorIndex;
  private popular: { readonly ids: readonly string[]; readonly depth: number } | null = null;
  private deltasSincePopular = 0;

  constructor(private readonly options: EmbeddedStoreOptions) {
    this.userIndex = new VectorIndex(options);
    this.itemIndex = new VectorIndex(options);
  }

  async init(): Promise<void> {
    const path = this.options.path;
    if (!path || !existsSync(path)) return;
    const snapshot = deserialize(readFileSync(path)) as Snapshot;
    if (snapshot.version !== SNAPSHOT_VERSION || snapshot.dimension !== this.options.dimension) {
      throw new FatalError(
        'STORE_SCHEMA_MISMATCH',
        `snapshot ${path} has version ${snapshot.version} and dimension ${snapshot.dimension}; ` +
          `this store expects version ${SNAPSHOT_VERSION} and dimension ${this.options.dimension}`,
      );
    }
    for (const user of snapshot.users) this.setUser(user);
    for (const item of snapshot.items) this.setItem(item);
  }

  async getUsers(userIds: readonly string[]): Promise<Map<string, UserProfile>> {
    return pick(this.users, userIds);
  }

  async getItems(itemIds: readonly string[]): Promise<Map<string, ItemProfile>> {
    return pick(this.items, itemIds);
  }

  async putUsers(users: readonly UserProfile[]): Promise<void> {
    for (const user of users) this.setUser(user);
  }

  async applyItemDeltas(deltas: readonly ItemDelta[]): Promise<void> {
    // Validate all before applying any, so a bad delta leaves the call unapplied rather than half-applied.
    for (const delta of deltas) validateItemDelta(delta, this.options.dimension);
    const touched = new Set<MutableItemProfile>();
    for (const delta of deltas) {
      let item = this.items.get(delta.itemId) as MutableItemProfile | undefined;
      if (!item) this.items.set(delta.itemId, (item = cloneItem(undefined, delta.itemId, this.options.dimension)));
      applyValidItemDelta(item, delta, this.options);
      touched.add(item);
    }
    for (const item of touched) this.itemIndex.set(item.itemId, item.vector);
    this.deltasSincePopular += deltas.length;
  }

  async putItemMetadata(items: readonly ItemMetadata[]): Promise<void> {
    for (const meta of items) {
      this.setItem(applyItemMetadata(this.items.get(meta.itemId), meta, this.options.dimension));
    }
  }

  async searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.itemIndex.search(query, k, exclude);
  }

  async searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.userIndex.search(query, k, exclude);
  }

  async popularItems(k: number, nowMs: number): Promise<Neighbour[]> {
    const ids = this.popularRanking(k);
    return ids.slice(0, k).map((id) => ({
      id,
      score: decayedCount(this.items.get(id)!.popularity.longLog, nowMs, this.options.popularityLongHalfLifeMs),
    }));
  }

  async counts(): Promise<StoreCounts> {
    return { users: this.users.size, items: this.items.size };
  }

  async flush(): Promise<void> {
    const path = this.options.path;
    if (!path) return;
    const snapshot: Snapshot = {
      version: SNAPSHOT_VERSION,
      dimension: this.options.dimension,
      users: [...this.users.values()],
      items: [...this.items.values()],
    };
    mkdirSync(dirname(path), { recursive: true });
    // Write then rename, so a crash mid-write leaves the previous snapshot intact.
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, serialize(snapshot));
    renameSync(tmp, path);
  }

  async close(): Promise<void> {
    await this.flush();
  }

  private setUser(user: UserProfile): void {
    this.users.set(user.userId, user);
    this.userIndex.set(user.userId, user.vector);
  }

  private setItem(item: ItemProfile): void {
    this.items.set(item.itemId, item);
    this.itemIndex.set(item.itemId, item.vector);
  }

  /**
   * Item ids by long-window popularity. Ranking by the stored log-sum equals ranking by the decayed count
   * at any time, so the ranking only goes stale through new events; it is recomputed after
   * `popularRefreshDeltas` deltas (counted, not timed, so replays are deterministic), as a full scan per
   * request would dominate the cost of ranking.
   */
  private popularRanking(k: number): readonly string[] {
    const refreshAfter = Math.max(this.options.popularRefreshDeltas ?? 1_000, this.items.size / 10);
    const cached = this.popular;
    // A short list is stale as soon as anything changed: on a fresh store it would otherwise stay empty.
    const complete = cached !== null && (cached.ids.length >= k || this.deltasSincePopular === 0);
    if (cached && complete && this.deltasSincePopular < refreshAfter && cached.depth >= k) return cached.ids;
    const keep = Math.max(k, 256);
    // One pass with a bounded selection, not a sort of the catalogue.
    const top = new TopItems(keep);
    for (const item of this.items.values()) if (item.interactionCount > 0) top.offer(item);
    const ranked = top.sorted().map((i) => i.itemId);
    this.popular = { ids: ranked, depth: keep };
    this.deltasSincePopular = 0;
    return ranked;
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

/** The `k` items with the largest long-window popularity (ties: smaller id first), best first. */
class TopItems {
  private readonly items: ItemProfile[] = [];

  constructor(private readonly k: number) {}

  offer(item: ItemProfile): void {
    const list = this.items;
    if (list.length === this.k && !better(item, list[list.length - 1]!)) return;
    let i = list.length;
    while (i > 0 && better(item, list[i - 1]!)) i--;
    list.splice(i, 0, item);
    if (list.length > this.k) list.pop();
  }

  sorted(): ItemProfile[] {
    return this.items;
  }
}

function better(a: ItemProfile, b: ItemProfile): boolean {
  return a.popularity.longLog > b.popularity.longLog || (a.popularity.longLog === b.popularity.longLog && a.itemId < b.itemId);
}
