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
}
