import type { ItemMetadata, ItemProfile, StoreCounts, UserProfile } from '../port.ts';

/**
 * What the tiered store needs of its durable, shared tier: whole-state reads and writes, a paged scan of the
 * items, and a request counter. The Qdrant adapter (`store/qdrant/adapter.ts`) implements it; tests wrap it
 * to inject failures.
 */

/** An item's new vector alone (its payload unchanged). */
export interface ItemVector {
  readonly itemId: string;
  readonly vector: Float32Array;
}

/** A page of a scan over every item; `next` is null after the last page. */
export interface ItemPage {
  readonly items: readonly ItemProfile[];
  readonly next: string | number | null;
}

export interface DurableTier {
  init(): Promise<void>;
  getUsers(userIds: readonly string[]): Promise<Map<string, UserProfile>>;
  getItems(itemIds: readonly string[]): Promise<Map<string, ItemProfile>>;
  /** The users' `outbox`es as last written (`UserProfile.outbox`); `getUsers` leaves them out. */
  readOutboxes(userIds: readonly string[]): Promise<Map<string, string>>;
  /** Whole user states, the last of an id winning; acknowledged = durable and visible to every reader. */
  putUsers(users: readonly UserProfile[]): Promise<void>;
  /**
   * Whole item states (no read, no merge) and, for items of which only the vector changed, just their vectors,
   * in one request; acknowledged = durable and visible.
   */
  putItems(items: readonly ItemProfile[], vectors?: readonly ItemVector[]): Promise<void>;
  putItemMetadata(items: readonly ItemMetadata[]): Promise<void>;
  /** Items in point-id order, `limit` per page, starting after `offset` (null: from the first). */
  scrollItems(limit: number, offset: string | number | null): Promise<ItemPage>;
  counts(): Promise<StoreCounts>;
  /** Requests sent since creation, retries included. */
  roundTrips(): number;
  flush(): Promise<void>;
  close(): Promise<void>;
}
