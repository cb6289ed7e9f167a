import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { deserialize } from 'node:v8';
import { FatalError } from '../../errors/index.ts';
import { fileError, nodeFileSystem, writeAtomically, type FileSystem } from '../../util/files.ts';
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
import { EmbeddedBatch, profilesOf } from './batch.ts';
import { PopularRanking } from './state/popular-ranking.ts';
import {
  captureSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  isSnapshotFile,
  restoreSnapshot,
  SNAPSHOT_VERSION,
  type CapturedSnapshot,
  type NegativeRing,
} from './state/snapshot.ts';

/**
 * The embedded vector + graph store: the collaborative state in typed arrays (`state/`), vectors also in a
 * `VectorIndex` per collection for search, and an optional snapshot file (`state/snapshot.ts`) so a restart
 * resumes where the last snapshot left off: written by `flush()`/`close()`, or, in a pipeline, by the
 * checkpointer (`checkpoint.ts`) periodically and at shutdown, with the source positions it reflects.
 *
 * The store is the batch view: `openBatch()` hands the pipeline the live state, which the learner changes in
 * place (journaled) and the ranking stages read directly, without copying profiles; `commit` publishes the
 * batch's vectors to the indexes and its popularity to the ranking, `rollback` undoes it whole. The port's
 * writes (`putUsers`, `applyItemDeltas`, `putItemMetadata`, restores) wait while a batch is open, so a
 * rollback never undoes them. Reads (`getUsers`, `getItems`) build profiles at the edge: copies, never live.
 * The merge rules are Qdrant's (`item-merge.ts`), checked for both by the contract suite.
 */

export interface EmbeddedStoreOptions extends StateLimits, Omit<VectorIndexOptions, 'dimension' | 'onError'> {
  /** Snapshot file (`state/snapshot.ts`); undefined = memory only. */
  readonly path?: string;
  /** The file operations snapshots are written with (tests inject failures); default the real ones. */
  readonly fs?: FileSystem;
  /** Users held; past 5% more, the least recently seen are retired (`CollaborativeState.retireUsers`). 0 = no bound. */
  readonly maxUsersInMemory?: number;
  /** Where a failed HNSW refresh is reported (search stays exact meanwhile); unset = a process warning. */
  readonly log?: Logger;
}

/** The snapshot format before 2 (v8-serialized profiles): still read, never written. */
const V1_SNAPSHOT_VERSION = 1;

interface SnapshotV1 {
  readonly version: number;
  readonly dimension: number;
  readonly users: UserProfile[];
  readonly items: ItemProfile[];
}

/** What `init()` restored from the snapshot file, for whoever resumes from it (`checkpoint.ts`). */
export interface RestoredSnapshot {
  readonly path: string;
  /** 2 = typed columns (`state/snapshot.ts`); 1 = the old profile format (no metadata, no negatives). */
  readonly format: 1 | 2;
  /** What the writer stored beside the state (a checkpoint's positions); null for format 1 or a plain `flush()`. */
  readonly meta: unknown;
  /** The negative sampler's ring, in this store's item slots; null when the file has none. */
  readonly negatives: NegativeRing | null;
  readonly bytes: number;
  readonly readMs: number;
}

/** One snapshot written: its size and how long each step took. */
export interface SnapshotWritten {
  readonly bytes: number;
  /** Encoding (JSON of the ids, checksum, one buffer), ms. */
  readonly encodeMs: number;
  /** Writing, fsync, rename and directory fsync, ms. */
  readonly writeMs: number;
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
  private restoredSnapshot: RestoredSnapshot | null = null;
  /** Set once a checkpointer writes the snapshot file: `flush()` and `close()` then leave it alone. */
  private snapshotsHandedOver = false;

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

  /**
   * Restores the snapshot file when there is one: format 2 (typed columns, `state/snapshot.ts`) as it lies,
   * format 1 (v8-serialized profiles, before checkpoints) through the profiles; vectors are indexed again and
   * the popularity ranking is rebuilt when next asked. What the file holds besides the state is kept for
   * `restored` (a checkpoint's positions, the negative sampler's ring).
   */
  async init(): Promise<void> {
    const path = this.options.path;
    if (!path) return;
    const started = performance.now();
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fileError(err, 'read snapshot', path);
    }
    if (isSnapshotFile(bytes)) {
      const decoded = decodeSnapshot(bytes, path);
      const slotOf = restoreSnapshot(this.state, decoded, path);
      this.indexRestored();
      const negatives = decoded.negatives
        ? { ring: decoded.negatives.ring.map(slotOf).filter((i) => i >= 0), next: decoded.negatives.next }
        : null;
      this.restoredSnapshot = { path, format: 2, meta: decoded.header.meta, negatives, bytes: bytes.length, readMs: performance.now() - started };
      return;
    }
    let snapshot: SnapshotV1;
    try {
      snapshot = deserialize(bytes) as SnapshotV1;
    } catch (err) {
      throw new FatalError('SNAPSHOT_CORRUPT', `snapshot ${path} is neither format ${SNAPSHOT_VERSION} nor a readable format 1 file`, { cause: err });
    }
    if (snapshot.version !== V1_SNAPSHOT_VERSION || snapshot.dimension !== this.options.dimension) {
      throw new FatalError(
        'STORE_SCHEMA_MISMATCH',
        `snapshot ${path} has version ${snapshot.version} and dimension ${snapshot.dimension}; ` +
          `this store reads versions ${V1_SNAPSHOT_VERSION} and ${SNAPSHOT_VERSION} with dimension ${this.options.dimension}`,
      );
    }
    this.restoreUsers(snapshot.users);
    this.restoreItems(snapshot.items);
    this.restoredSnapshot = { path, format: 1, meta: null, negatives: null, bytes: bytes.length, readMs: performance.now() - started };
  }

  /** What `init()` restored (null: no snapshot file, or memory only). */
  get restored(): RestoredSnapshot | null {
    return this.restoredSnapshot;
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

  /** Told the ids of users retired from memory (the tiered store forgets it held them). */
  onUsersRetired: ((userIds: readonly string[]) => void) | null = null;

  /**
   * Publishes a committed batch's changes: vectors to the indexes, raised popularity to the ranking; then, past
   * `maxUsersInMemory` (+5%, so the scan is rare), retires the least recently seen users.
   */
  publish(changes: { readonly users: readonly number[]; readonly itemVectors: readonly number[]; readonly raisedItems: readonly number[] }): void {
    const s = this.state;
    const d = s.dimension;
    for (const u of changes.users) if (s.userExists[u] === 1) this.userIndex.setRow(s.users.idOf(u), s.userVec, u * d);
    for (const i of changes.itemVectors) this.indexItem(i);
    this.popular.raise(changes.raisedItems);
    const max = this.options.maxUsersInMemory ?? 0;
    if (max > 0 && s.userCountLive > max * 1.05) this.retireUsers(max);
  }

  /** Retires users down to `keep`: out of the state and the index; their slots go to new users. */
  retireUsers(keep: number): readonly string[] {
    const retired = this.state.retireUsers(keep);
    for (const id of retired) this.userIndex.remove(id);
    if (retired.length > 0) this.onUsersRetired?.(retired);
    return retired;
  }

  async getUsers(userIds: readonly string[]): Promise<Map<string, UserProfile>> {
    return profilesOf(userIds, (id) => this.state.userSlot(id), (u) => this.state.userProfile(u));
  }

  async getItems(itemIds: readonly string[]): Promise<Map<string, ItemProfile>> {
    return profilesOf(itemIds, (id) => this.state.knownItem(id), (i) => this.state.itemProfile(i));
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

  /**
   * Writes the snapshot (no metadata, no negative ring) once no batch is open, through a temp file, fsync and
   * an atomic rename. A no-op without a path, and once a checkpointer writes the file (`handOverSnapshots`):
   * its checkpoints carry the source positions, which a plain snapshot would overwrite with none.
   */
  async flush(): Promise<void> {
    if (!this.options.path || this.snapshotsHandedOver) return;
    await this.idle();
    await this.writeSnapshot(this.captureSnapshot());
  }

  /** Releases the index workers; writes the snapshot as `flush()` does. */
  async close(): Promise<void> {
    await this.flush();
    await Promise.all([this.userIndex.close(), this.itemIndex.close()]);
  }

  // ---- checkpoints (checkpoint.ts) ----

  /** From now on only the caller writes the snapshot file: `flush()` and `close()` no longer do. */
  handOverSnapshots(): void {
    this.snapshotsHandedOver = true;
  }

  /**
   * Copies the whole state now, synchronously, for `writeSnapshot` (`state/snapshot.ts`). No batch may be open:
   * call it between batches, where the copy is exactly the state of the positions in `meta`.
   */
  captureSnapshot(extras: { readonly meta?: unknown; readonly negatives?: NegativeRing | null } = {}): CapturedSnapshot {
    if (this.batch) throw new Error('a snapshot cannot be captured while a batch is open');
    return captureSnapshot(this.state, extras);
  }

  /** Encodes a capture and writes it durably to the snapshot file (`util/files.ts`); throws classified file errors. */
  async writeSnapshot(captured: CapturedSnapshot): Promise<SnapshotWritten> {
    const path = this.options.path;
    if (!path) throw new FatalError('SNAPSHOT_NO_PATH', 'the embedded store has no snapshot path (store.embedded.path)');
    const started = performance.now();
    const bytes = encodeSnapshot(captured);
    const encoded = performance.now();
    const fs = this.options.fs ?? nodeFileSystem;
    try {
      await fs.mkdir(dirname(path));
      await writeAtomically(path, bytes, fs);
    } catch (err) {
      throw fileError(err, 'write snapshot', path);
    }
    return { bytes: bytes.length, encodeMs: encoded - started, writeMs: performance.now() - encoded };
  }

  /** Indexes every restored vector and lets the popularity ranking rebuild from the columns. */
  private indexRestored(): void {
    const s = this.state;
    for (const u of s.users.liveSlots()) if (s.userExists[u] === 1) this.userIndex.set(s.users.idOf(u), s.userVector(u));
    for (const i of s.items.liveSlots()) this.indexItem(i);
    this.popular.invalidate();
  }

  /** Resolves when no batch is open. */
  private async idle(): Promise<void> {
    while (this.batch) await this.batchDone;
  }

  /** Indexes the item's vector once learned (a catalogue-only item has a zero placeholder, never searchable). */
  private indexItem(i: number): void {
    const s = this.state;
    if (s.itemExists[i] === 1 && s.isLearned(i)) this.itemIndex.setRow(s.items.idOf(i), s.itemVec, i * s.dimension);
  }

  private indexFailed(collection: 'users' | 'items', err: unknown): void {
    const message = `HNSW refresh of ${collection} failed; searching its changed vectors exactly until the next one`;
    if (this.options.log) this.options.log.warn({ code: 'STORE_INDEX_REFRESH_FAILED', collection, err }, message);
    else process.emitWarning(`${message}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
