import type { SourcePosition } from '../domain/events.ts';

/**
 * The vector + graph store port. It holds, per user and per item, a collaborative embedding and the bounded
 * neighbourhood payload that Collaborative Signal Translation reads. Adapters: `embedded/` and `qdrant/`.
 *
 * Writers and concurrency: interactions are keyed by user, so exactly one pipeline instance owns a user at a
 * time and writes whole `UserProfile`s (`putUsers`). Items are touched by every instance, so item writes are
 * commutative deltas (`applyItemDeltas`): vector increments, counter increments, log-sum-exp popularity,
 * co-occurrence increments. An adapter must apply deltas without losing concurrent ones within its process;
 * across processes, an adapter without atomic updates (Qdrant) relies on one writer per item, which
 * `store.itemWrites = routed` provides (`src/stages/item-deltas/`).
 *
 * Contract checked by `test/store/contract.ts` for every adapter.
 */

export interface TimedId {
  readonly id: string;
  readonly atMs: number;
}

export interface UserProfile {
  readonly userId: string;
  readonly vector: Float32Array;
  /** Most recent first, at most `store.userHistoryLength`. */
  readonly recentItems: readonly TimedId[];
  readonly interactionCount: number;
  /**
   * Bloom filter (see `src/util/bloom.ts`) of every item the user ever interacted with, so that consumed items
   * can be excluded beyond the bounded `recentItems`. Fixed size: `store.consumedFilterBytes`.
   */
  readonly consumed: Uint8Array;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  /**
   * Per source partition, the highest offset this state holds the learning of (`LearnedPositions`); stores
   * written per batch only (the tiered store reads and writes it with the state). The profile path
   * (`learnEventOnce`) skips an event at or below it and raises it with each event it learns.
   */
  readonly learned?: LearnedPositions;
  /**
   * Routed item writes (`stages/item-deltas`): the item changes that the events of this state's write made,
   * encoded by the processor (`encodeOutbox`) and opaque to stores. Written with the state, so a crash between
   * this write and their send to the item-deltas topic cannot lose them: a redelivered event that its user's
   * state already holds sends them from here (`readOutboxes`). Kept by stores written per batch (the tiered
   * store over Qdrant); never returned by `getUsers`.
   */
  readonly outbox?: string;
}

/**
 * Source positions a durable state holds (a store written per batch: the tiered store over Qdrant): per input
 * partition (`topic:partition`, Kafka topic names have no colon) the highest offset whose learning the state
 * includes. Written atomically with the state (one Qdrant point), so an event at or below it is never learned
 * into that state again (`LiveBatch.learned`). Users are owned by partition, so a user has one entry; an item
 * one per partition whose events touched it.
 */
export type LearnedPositions = ReadonlyMap<string, number>;

/** The key of `LearnedPositions` for a source partition. */
export function sourceKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/**
 * Popularity as exponentially decayed counts kept in log space, so that increments from different writers
 * commute: `log Σ exp(tᵢ/τ)`. Read it at time t with `decayedCount(logSum, t, τ)`.
 */
export interface DecayedCounts {
  readonly shortLog: number;
  readonly longLog: number;
}

export interface ItemProfile {
  readonly itemId: string;
  readonly vector: Float32Array;
  /** Most recent first, at most `store.itemAudienceLength`. */
  readonly recentUsers: readonly TimedId[];
  readonly interactionCount: number;
  readonly popularity: DecayedCounts;
  /** Items seen in the same users' recent histories, with counts; at most `store.cooccurrenceLimit`. */
  readonly cooccurrence: ReadonlyMap<string, number>;
  readonly title: string | null;
  readonly categories: readonly string[];
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  /** As `UserProfile.learned`: per source partition, the highest offset whose contribution the item holds. */
  readonly learned?: LearnedPositions;
}

/** A commutative change to one item. Fields left out change nothing. */
export interface ItemDelta {
  readonly itemId: string;
  /** Vector of a new item; ignored when the item already exists. */
  readonly initialVector?: Float32Array;
  /** Added to the vector element-wise. */
  readonly vectorDelta?: Float32Array;
  /** A user who just interacted with the item. */
  readonly seenBy?: TimedId;
  readonly interactions?: number;
  /** Event time of the interaction, for popularity and first/last seen. */
  readonly atMs: number;
  readonly cooccurrence?: ReadonlyMap<string, number>;
}

export interface ItemMetadata {
  readonly itemId: string;
  readonly title: string;
  readonly categories: readonly string[];
}

export interface Neighbour {
  readonly id: string;
  /** Inner product with the query for vector searches; decayed count for popularity. */
  readonly score: number;
}

export interface StoreCounts {
  readonly users: number;
  readonly items: number;
}

export interface VectorStore {
  readonly kind: 'embedded' | 'qdrant';
  /** Creates or checks collections; a dimension or distance mismatch is a `FatalError`. */
  init(): Promise<void>;
  getUsers(userIds: readonly string[]): Promise<Map<string, UserProfile>>;
  getItems(itemIds: readonly string[]): Promise<Map<string, ItemProfile>>;
  putUsers(users: readonly UserProfile[]): Promise<void>;
  applyItemDeltas(deltas: readonly ItemDelta[]): Promise<void>;
  putItemMetadata(items: readonly ItemMetadata[]): Promise<void>;
  /** Items with the largest inner product with `query`, best first, skipping `exclude`. */
  searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]>;
  searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]>;
  /** Items by long-window decayed count at `nowMs`, best first. May lag the latest deltas by a moment. */
  popularItems(k: number, nowMs: number): Promise<Neighbour[]>;
  counts(): Promise<StoreCounts>;
  /** Makes everything written so far durable (embedded: the snapshot file). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /**
   * Writes one batch's users and item deltas as one unit, as far as this process can tell: either later reads
   * here see both, or (the call rejected) neither, so a redelivered batch is learned from the same state. The
   * stages' `StoreView.commit()` prefers it to `putUsers` + `applyItemDeltas` when present (`store/tiered`).
   */
  writeBatch?(users: readonly UserProfile[], deltas: readonly ItemDelta[]): Promise<void>;
  /**
   * Stores whose item states carry source positions (the tiered store): the positions each item's durable
   * state holds (read again where this process may not hold the latest). The routed item writer drops changes
   * at or below them, so a change applied before its writer crashed is not applied again.
   */
  itemPositions?(itemIds: readonly string[]): Promise<Map<string, LearnedPositions>>;
  /**
   * `applyItemDeltas` raising each item's positions to `positions` (per item and source partition, the highest
   * offset among the changes applied) in the same point write: the item-side half of exactly-once routed writes.
   */
  applySourcedItemDeltas?(deltas: readonly ItemDelta[], positions: ReadonlyMap<string, LearnedPositions>): Promise<void>;
  /** Stores that keep `UserProfile.outbox`: each user's as last written (users without one are absent). */
  readOutboxes?(userIds: readonly string[]): Promise<Map<string, string>>;
  /**
   * Requests sent to a remote store since it was created, retries included (in-process stores: 0). The
   * processor reports the difference over a batch as `starstream_store_round_trips_per_batch`.
   */
  roundTrips?(): number;
  /**
   * The event log gave this process a partition it did not own before (a rebalance, or the first assignment):
   * state this process cached for users and items it may now own can be stale, as another process may have
   * written it meanwhile. A store that caches shared state re-reads it before trusting it (`store/tiered/`).
   * Called synchronously, before the first batch of the new partition is handled.
   */
  ownershipChanged?(): void;
  /**
   * Opens a batch over the store's live state (in-process stores): learning then changes the state in place
   * instead of going through profiles and deltas. Stores without it are read and written through `StoreView`.
   */
  openBatch?(hint?: BatchHint): Promise<LiveBatch>;
}

/**
 * The collaborative state as the learner changes it: users and items by int slot, vectors as live views,
 * and the few commutative changes an interaction makes. Implemented by the embedded store's typed state
 * (`embedded/state/`), which journals every change of an open batch so that the batch can be undone
 * as a whole; strings appear only where an id enters (`user`, `item`, `knownItem`).
 */
export interface LearningState {
  readonly dimension: number;
  /** The user's slot; a new user is created with the vector `init` fills. Journals the user for the batch. */
  user(userId: string, init: (vector: Float32Array) => void): number;
  /** The item's slot, or -1 when the state does not hold it. */
  knownItem(itemId: string): number;
  /** The item's slot; a new item is created as an unseen placeholder (no learned vector). */
  item(itemId: string): number;
  /** True once the item has a learned vector (an item known only from its catalogue record has none). */
  isLearned(item: number): boolean;
  /** Live view of the user's vector, changed in place by the learner. */
  userVector(user: number): Float32Array;
  /** Live view of the item's vector: read only, change it through `addToItemVector`/`seedItem`. */
  itemVector(item: number): Float32Array;
  /** Sets the vector of an item that has none yet (`isLearned` false). */
  seedItem(item: number, vector: Float32Array): void;
  addToItemVector(item: number, delta: Float32Array): void;
  /** Items in the user's recent history, most recent first. */
  recentCount(user: number): number;
  recentItem(user: number, k: number): number;
  /**
   * One interaction: the user's history (the item first), count, consumed filter and first/last seen; the
   * item's audience, count, popularity and first/last seen.
   */
  recordInteraction(user: number, item: number, atMs: number): void;
  /** `item` was seen in the same history as `other`, once more, at `atMs`. */
  addCooccurrence(item: number, other: number, atMs: number): void;
  /** The item took part in a learning step at `atMs` (a sampled negative): first/last seen only. */
  sightItem(item: number, atMs: number): void;
}

/**
 * What the ranking stages (candidates, evidence, the on-demand API) read while a batch is handled: profiles as
 * of the event, vector searches, popularity. `StoreView` (`stages/state/`) provides it over any store; the
 * embedded store's batch over its live state.
 */
export interface BatchReader {
  itemsById(itemIds: readonly string[]): Promise<Map<string, ItemProfile>>;
  /** The co-occurrence lists of these items (held ones, in order) without building profiles; optional. */
  cooccurrenceRows?(itemIds: readonly string[]): CooccurrenceRows;
  /**
   * The recent histories of these users (held ones, in order) as item keys, without building profiles; optional.
   * The evidence stage counts neighbours' engagement over them (`UserProfile.recentItems`, as keys).
   */
  historyRows?(userIds: readonly string[]): HistoryRows;
  usersById(userIds: readonly string[]): Promise<Map<string, UserProfile>>;
  searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]>;
  searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]>;
  popularItems(k: number, nowMs: number): Promise<Neighbour[]>;
}

/**
 * Co-occurrence lists of some items (rows) with the co-occurring items as dense int keys (`< keySpace`), so the
 * candidates stage aggregates them in typed arrays; strings only for the few ids it returns.
 */
export interface CooccurrenceRows {
  readonly rows: number;
  rowId(row: number): string;
  length(row: number): number;
  key(row: number, entry: number): number;
  count(row: number, entry: number): number;
  readonly keySpace: number;
  idOf(key: number): string;
  /** The key of an item id, or -1 when no row can hold it. */
  keyOf(itemId: string): number;
  /**
   * Optional, together: a row's keys and counts as arrays (at least `length(row)` long; read them at once), so
   * the aggregation reads typed arrays rather than one call per entry.
   */
  keysOf?(row: number): ArrayLike<number>;
  countsOf?(row: number): ArrayLike<number>;
}

/** Recent histories of some users (rows), most recent first, with items as dense int keys (`< keySpace`). */
export interface HistoryRows {
  readonly rows: number;
  length(row: number): number;
  key(row: number, entry: number): number;
  readonly keySpace: number;
  /** The key of an item id, or -1 when no history can hold it. */
  keyOf(itemId: string): number;
}

/**
 * A batch over a store's live state (`VectorStore.openBatch`): the learner changes `state` in place, the ranking
 * stages read through the `BatchReader` half, and the batch ends in `commit()` (its changes become the store's)
 * or `rollback()` (the state is as before the batch). The store's other writes wait until it ends.
 */
export interface LiveBatch extends BatchReader {
  readonly state: LearningState;
  /** The user as of now, built at the edge (a copy). */
  user(userId: string): UserProfile | undefined;
  /**
   * Makes the batch's changes durable where the store has a durable tier (the tiered store writes them to
   * Qdrant; the embedded store: nothing to do), the batch staying open; a failure rolls it back and rejects.
   */
  prepare(): Promise<void>;
  /** Makes the batch's changes the store's (after `prepare`, or directly). */
  commit(): Promise<void>;
  /** Undoes the batch, before or after `prepare`. */
  rollback(): void;
  /**
   * Stores whose durable states carry source positions (`LearnedPositions`: the tiered store): called before
   * the event at `source` of `userId` is learned. True when the user's durable state already holds that event
   * (learned and made durable before a crash kept its offset from committing). Either way the caller then
   * learns it through `state`, which drops every change to a user or item whose state already holds the event,
   * so a redelivered event is learned once, also when only one of the two collections took the earlier write.
   * Absent: nothing is skipped.
   */
  learned?(source: SourcePosition, userId: string): boolean;
}

/** The ids a batch is about to touch, so a store backed by a remote tier loads what it lacks first. */
export interface BatchHint {
  readonly userIds: readonly string[];
  readonly itemIds: readonly string[];
}
