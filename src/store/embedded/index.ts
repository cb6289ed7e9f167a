import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { FatalError } from '../../errors/index.ts';
import { validateItemDelta } from '../item-merge.ts';
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
import { CollaborativeState, type StateLimits } from './state/collaborative-state.ts';
import { EmbeddedBatch } from './batch.ts';
import { PopularRanking } from './state/popular-ranking.ts';

/**
 * The embedded vector + graph store: the collaborative state in typed arrays (`state/`), vectors also in a
 * `VectorIndex` per collection for search, and an optional snapshot file so a restart resumes where the last
 * `flush()` left off.
 *
 * The store is the batch view: `openBatch()` hands the pipeline the live state, which the learner changes in
 * place (journaled) and the ranking stages read directly, without copying profiles; `commit` publishes the
 * batch's vectors to the indexes and its popularity to the ranking, `rollback` undoes it whole. The port's
 * writes (`putUsers`, `applyItemDeltas`, `putItemMetadata`, restores) wait while a batch is open, so a
 * rollback never undoes them. Reads (`getUsers`, `getItems`) build profiles at the edge: copies, never live.
 * The merge rules are Qdrant's (`item-merge.ts`), checked for both by the contract suite.
 */

export interface EmbeddedStoreOptions extends StateLimits, Omit<VectorIndexOptions, 'dimension' | 'onError'> {
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
  readonly state: CollaborativeState;
  private readonly userIndex: VectorIndex;
  private readonly itemIndex: VectorIndex;
  private readonly popular: PopularRanking;
  private batch: EmbeddedBatch | null = null;
  private batchDone: Promise<void> = Promise.resolve();

  constructor(private readonly options: EmbeddedStoreOptions) {
    this.state = new CollaborativeState(options);
    this.popular = new PopularRanking(this.state);
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
    this.restoreUsers(snapshot.users);
    this.restoreItems(snapshot.items);
  }

  /**
   * Opens the batch view over the live state (after any batch still open settles). The caller learns and ranks
   * through it and ends it with `commit()` or `rollback()`; the port's writes wait meanwhile.
   */
  async openBatch(): Promise<EmbeddedBatch> {
    while (this.batch) await this.batchDone;
    let settle!: () => void;
    this.batchDone = new Promise((resolve) => (settle = resolve));
    this.state.begin();
    const batch = new EmbeddedBatch(this.state, this, () => {
      this.batch = null;
      settle();
    });
    this.batch = batch;
    return batch;
  }

  /** Publishes a committed batch's changes: vectors to the indexes, raised popularity to the ranking. */
  publish(changes: { readonly users: readonly number[]; readonly itemVectors: readonly number[]; readonly raisedItems: readonly number[] }): void {
    const s = this.state;
    for (const u of changes.users) if (s.userExists[u] === 1) this.userIndex.set(s.users.idOf(u), s.userVector(u));
    for (const i of changes.itemVectors) this.indexItem(i);
    this.popular.raise(changes.raisedItems);
  }

  async getUsers(userIds: readonly string[]): Promise<Map<string, UserProfile>> {
    const out = new Map<string, UserProfile>();
    for (const id of userIds) {
      const u = this.state.userSlot(id);
      if (u >= 0) out.set(id, this.state.userProfile(u));
    }
    return out;
  }

  async getItems(itemIds: readonly string[]): Promise<Map<string, ItemProfile>> {
    const out = new Map<string, ItemProfile>();
    for (const id of itemIds) {
      const i = this.state.knownItem(id);
      if (i >= 0) out.set(id, this.state.itemProfile(i));
    }
    return out;
  }

  async putUsers(users: readonly UserProfile[]): Promise<void> {
    await this.idle();
    this.restoreUsers(users);
  }

  async applyItemDeltas(deltas: readonly ItemDelta[]): Promise<void> {
    // Validate all before applying any, so a bad delta leaves the call unapplied rather than half-applied.
    for (const delta of deltas) validateItemDelta(delta, this.options.dimension);
    await this.idle();
    const touched = new Set<number>();
    const raised: number[] = [];
    for (const delta of deltas) {
      const i = this.state.applyDelta(delta);
      touched.add(i);
      if ((delta.interactions ?? 0) > 0) raised.push(i);
    }
    for (const i of touched) this.indexItem(i);
    this.popular.raise(raised);
  }

  /**
   * Installs whole profiles as given, replacing any held (a restore path: the tiered store's hot tier takes
   * the states Qdrant holds or has just acknowledged). Synchronous: callers make sure no batch is open.
   */
  restoreUsers(users: readonly UserProfile[]): void {
    for (const user of users) {
      this.state.setUser(user);
      this.userIndex.set(user.userId, user.vector);
    }
  }

  /** `restoreUsers` for items; a restored popularity may be lower, so the ranking is rebuilt when next asked. */
  restoreItems(items: readonly ItemProfile[]): void {
    for (const item of items) this.indexItem(this.state.setItem(item));
    this.popular.invalidate();
  }

  /** In-process: no request ever leaves it. */
  roundTrips(): number {
    return 0;
  }

  async putItemMetadata(items: readonly ItemMetadata[]): Promise<void> {
    await this.idle();
    // Metadata never changes a vector: a learned item is already indexed, and a catalogue-only item has only
    // a zero placeholder, which must not be searchable (it would fill the graph and the results).
    for (const meta of items) this.state.setMetadata(meta);
  }

  async searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.itemIndex.search(query, k, exclude);
  }

  async searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    return this.userIndex.search(query, k, exclude);
  }

  async popularItems(k: number, nowMs: number): Promise<Neighbour[]> {
    return this.popularNow(k, nowMs);
  }

  /** `popularItems`, synchronously: the ranking as of the last commit, scored at `nowMs`. */
  popularNow(k: number, nowMs: number): Neighbour[] {
    const s = this.state;
    return this.popular.top(k).map((i) => ({
      id: s.items.idOf(i),
      score: decayedCount(s.longLog[i]!, nowMs, this.options.popularityLongHalfLifeMs),
    }));
  }

  async counts(): Promise<StoreCounts> {
    return { users: this.state.userCountLive, items: this.state.itemCountLive };
  }

  async flush(): Promise<void> {
    const path = this.options.path;
    if (!path) return;
    await this.idle();
    const s = this.state;
    const snapshot: Snapshot = {
      version: SNAPSHOT_VERSION,
      dimension: this.options.dimension,
      users: [...s.users.liveSlots()].filter((u) => s.userExists[u] === 1).map((u) => s.userProfile(u)),
      items: [...s.items.liveSlots()].filter((i) => s.itemExists[i] === 1).map((i) => s.itemProfile(i)),
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

  /** Resolves when no batch is open. */
  private async idle(): Promise<void> {
    while (this.batch) await this.batchDone;
  }

  /** Indexes the item's vector once learned (a catalogue-only item has a zero placeholder, never searchable). */
  private indexItem(i: number): void {
    const s = this.state;
    if (s.itemExists[i] === 1 && s.isLearned(i)) this.itemIndex.set(s.items.idOf(i), s.itemVector(i));
  }

  private indexFailed(collection: 'users' | 'items', err: unknown): void {
    const message = `HNSW refresh of ${collection} failed; searching its changed vectors exactly until the next one`;
    if (this.options.log) this.options.log.warn({ code: 'STORE_INDEX_REFRESH_FAILED', collection, err }, message);
    else process.emitWarning(`${message}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
