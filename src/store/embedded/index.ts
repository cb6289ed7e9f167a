import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { FatalError } from '../../errors/index.ts';
import {
  applyValidItemDelta,
  applyItemMetadata,
  cloneItem,
  isUnseenItem,
  validateItemDelta,
  type ItemMergeLimits,
  type MutableItemProfile,
} from '../item-merge.ts';
import type { Logger } from '../../logging/logger.ts';
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
import { VectorIndex, type VectorIndexOptions, type VectorIndexStats } from './vector-index.ts';

/**
 * The embedded vector + graph store: profiles in memory, vectors in a `VectorIndex` per collection, and an
 * optional snapshot file so a restart resumes where the last `flush()` left off.
 *
 * One process owns it, so "concurrent" item deltas are simply applied in call order on the event loop; the
 * merge rules (`item-merge.ts`) are the same as Qdrant's. Reads hand out the stored objects without copying
 * and item deltas change them in place: a profile read earlier shows later writes. Callers treat profiles as
 * read-only (the stages' `StoreView` copies before changing anything).
 */

export interface EmbeddedStoreOptions extends ItemMergeLimits, Omit<VectorIndexOptions, 'dimension' | 'onError'> {
  /** Snapshot file; undefined = memory only. */
  readonly path?: string;
  /** Where a failed HNSW refresh is reported (search stays exact meanwhile); unset = a process warning. */
  readonly log?: Logger;
}

const SNAPSHOT_VERSION = 1;

interface Snapshot {
  readonly version: number;
  readonly dimension: number;
  readonly users: UserProfile[];
  readonly items: ItemProfile[];
}

export function createEmbeddedStore(options: EmbeddedStoreOptions): EmbeddedStore {
  return new EmbeddedStore(options);
}

export class EmbeddedStore implements VectorStore {
  readonly kind = 'embedded' as const;
  private readonly users = new Map<string, UserProfile>();
  private readonly items = new Map<string, ItemProfile>();
  private readonly userIndex: VectorIndex;
  private readonly itemIndex: VectorIndex;
  /** The popularity ranking, exact at every moment (see `popularRanking`); null until asked or after a restore. */
  private popular: PopularRanking | null = null;

  constructor(private readonly options: EmbeddedStoreOptions) {
    this.userIndex = new VectorIndex({ ...options, onError: (err) => this.indexFailed('users', err) });
    this.itemIndex = new VectorIndex({ ...options, onError: (err) => this.indexFailed('items', err) });
  }

  /**
   * Resolves once neither collection has an HNSW refresh in flight, so a test or a replay can fix the point
   * where a worker-built graph takes over (`store.embedded.indexBuild: 'inline'` needs no waiting).
   */
  async awaitIndexRebuilds(): Promise<void> {
    await Promise.all([this.userIndex.awaitRebuild(), this.itemIndex.awaitRebuild()]);
  }

  /** `VectorIndex.rebuild` of both collections: their graphs hold every vector written so far. */
  async rebuildIndexes(): Promise<void> {
    await Promise.all([this.userIndex.rebuild(), this.itemIndex.rebuild()]);
  }

  indexStats(): { readonly users: VectorIndexStats; readonly items: VectorIndexStats } {
    return { users: this.userIndex.stats(), items: this.itemIndex.stats() };
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
    this.popular = null;
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
    const raised = new Set<MutableItemProfile>();
    for (const delta of deltas) {
      let item = this.items.get(delta.itemId) as MutableItemProfile | undefined;
      if (!item) this.items.set(delta.itemId, (item = cloneItem(undefined, delta.itemId, this.options.dimension)));
      applyValidItemDelta(item, delta, this.options);
      touched.add(item);
      if ((delta.interactions ?? 0) > 0) raised.add(item);
    }
    for (const item of touched) this.itemIndex.set(item.itemId, item.vector);
    this.popular?.raise(raised);
  }

  /**
   * Installs whole profiles as given, replacing any held (a restore path: the tiered store's hot tier takes
   * the states Qdrant holds or has just acknowledged). The profiles become the stored objects: callers hand
   * over fresh ones and never change them afterwards.
   */
  restoreUsers(users: readonly UserProfile[]): void {
    for (const user of users) this.setUser(user);
  }

  /** `restoreUsers` for items; a restored popularity may be lower, so the ranking is rebuilt when next asked. */
  restoreItems(items: readonly ItemProfile[]): void {
    for (const item of items) this.setItem(item);
    this.popular = null;
  }

  /** In-process: no request ever leaves it. */
  roundTrips(): number {
    return 0;
  }

  async putItemMetadata(items: readonly ItemMetadata[]): Promise<void> {
    // Metadata never changes a vector: a learned item is already indexed, and a catalogue-only item has only
    // a zero placeholder, which must not be searchable (it would fill the graph and the results).
    for (const meta of items) {
      this.items.set(meta.itemId, applyItemMetadata(this.items.get(meta.itemId), meta, this.options.dimension));
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
    await Promise.all([this.userIndex.close(), this.itemIndex.close()]);
  }

  private setUser(user: UserProfile): void {
    this.users.set(user.userId, user);
    this.userIndex.set(user.userId, user.vector);
  }

  /** Stores `item`; indexes its vector only once learned (a catalogue-only item has a zero placeholder). */
  private setItem(item: ItemProfile): void {
    this.items.set(item.itemId, item);
    if (!isUnseenItem(item)) this.itemIndex.set(item.itemId, item.vector);
  }

  private indexFailed(collection: 'users' | 'items', err: unknown): void {
    const message = `HNSW refresh of ${collection} failed; searching its changed vectors exactly until the next one`;
    if (this.options.log) this.options.log.warn({ code: 'STORE_INDEX_REFRESH_FAILED', collection, err }, message);
    else process.emitWarning(`${message}: ${err instanceof Error ? err.message : String(err)}`);
  }

  /**
   * Item ids by long-window popularity, best first, as of every delta applied so far: the answer Qdrant gives
   * by ordering its float index live. Ranking by the stored log-sum equals ranking by the decayed count at any
   * time, so only new events change the order, and they only ever raise an item: `applyItemDeltas` tells the
   * ranking, which moves that one item up. (A cached ranking recomputed every max(1000, items/10) deltas made
   * the popular candidates, and the popularity baseline beside every recommendation, read a ranking up to a
   * few hundred events old, so the same stream ranked differently here and on Qdrant.) A full scan happens only
   * on the first request, after a restore, or for a `k` deeper than the list kept.
   */
  private popularRanking(k: number): readonly string[] {
    const cached = this.popular;
    if (cached && cached.answers(k)) return cached.ids;
    const depth = Math.max(k, 256);
    // One pass with a bounded selection, not a sort of the catalogue.
    const top = new TopItems(depth);
    for (const item of this.items.values()) if (item.interactionCount > 0) top.offer(item);
    const ranking = new PopularRanking(top.sorted().map((i) => i.itemId), depth, (id) => this.items.get(id)!);
    this.popular = ranking;
    return ranking.ids;
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

/**
 * The ids of the `depth` most popular items, best first (`better`), kept exact as items are raised. Exact
 * because popularity never falls: an item outside a full list can only enter by being raised, and then it is
 * offered here; a list shorter than `depth` holds every item with an interaction. Ids rather than profiles,
 * because `putItemMetadata` replaces an item's object (its popularity unchanged).
 */
class PopularRanking {
  constructor(
    public ids: string[],
    private readonly depth: number,
    private readonly item: (id: string) => ItemProfile,
  ) {}

  /** True when the first `k` ids are the exact top `k`. */
  answers(k: number): boolean {
    return k <= this.depth || this.ids.length < this.depth;
  }

  /**
   * These items' popularity went up (all of one write, already applied): the new list is the merge of the
   * untouched ids, whose order still holds, with the raised items sorted afresh. Moving them up one at a time
   * would compare against neighbours raised in the same write but not yet moved, and misplace both.
   */
  raise(raised: ReadonlySet<ItemProfile>): void {
    if (raised.size === 0) return;
    const ids = new Set([...raised].map((i) => i.itemId));
    const kept = this.ids.filter((id) => !ids.has(id));
    const added = [...raised].sort((a, b) => (better(a, b) ? -1 : 1));
    const merged: string[] = [];
    let i = 0;
    let j = 0;
    while (merged.length < this.depth && (i < kept.length || j < added.length)) {
      if (j >= added.length || (i < kept.length && better(this.item(kept[i]!), added[j]!))) merged.push(kept[i++]!);
      else merged.push(added[j++]!.itemId);
    }
    this.ids = merged;
  }
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
