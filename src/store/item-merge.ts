import { BadInputError } from '../errors/index.ts';
import { EMPTY_LOG_SUM, logAddEvent } from './popularity.ts';
import type { ItemDelta, ItemMetadata, ItemProfile, TimedId } from './port.ts';

/**
 * The one definition of how an `ItemDelta` changes an `ItemProfile`, used by every store adapter so that
 * item semantics cannot drift between the embedded store and Qdrant.
 *
 * Every rule commutes but one, so deltas for one item may be folded in any order (and several deltas of one
 * call coalesced into one write) with the same result; the exception is where the co-occurrence cut falls,
 * which depends on the order the maps come in (writers keep the log's order, and never sum two deltas' maps:
 * `mergeItemDeltas`):
 *
 * - vector: `initialVector` seeds a new item (or one known only from its catalogue record, see
 *   `isUnseenItem`); `vectorDelta` is added element-wise. Two deltas that both carry an `initialVector` for a
 *   new item: the first applied seeds it, and both `vectorDelta`s are added (float addition rounds, so the
 *   order can change the last bits);
 * - `interactionCount += interactions`;
 * - popularity (short and long windows): `interactions` events at `atMs` are log-add-exp'ed in
 *   (`logAddEvent`);
 * - `firstSeenMs = min`, `lastSeenMs = max` with `atMs`, for every delta that is a sighting of the item
 *   (`isSighting`: all but a vector-only delta, a sampled negative's step);
 * - `recentUsers`: union keeping each user's latest time, most recent first (ties by id), the first
 *   `itemAudienceLength` kept;
 * - `cooccurrence`: counts added, the `cooccurrenceLimit` largest kept (ties by id; `applyItemDelta` lets the
 *   map reach 1.25× the limit between cuts), order unspecified. Dropping
 *   the tail is the only lossy step: a count that fell out and comes back starts again from its new delta.
 *
 * Title and categories are not touched by deltas; `applyItemMetadata` sets them.
 */

/** The parts of the `store` config the merge reads; `Config['store']` satisfies it. */
export interface ItemMergeLimits {
  readonly dimension: number;
  readonly itemAudienceLength: number;
  readonly cooccurrenceLimit: number;
  readonly popularityShortHalfLifeMs: number;
  readonly popularityLongHalfLifeMs: number;
}

/**
 * `firstSeenMs`/`lastSeenMs` of an item no delta has touched yet (created by `applyItemMetadata`).
 * Chosen so that `min`/`max` with the first real `atMs` need no special case; `isUnseenItem` tests for it.
 */
export const UNSEEN_FIRST_SEEN_MS = Number.MAX_SAFE_INTEGER;
export const UNSEEN_LAST_SEEN_MS = Number.MIN_SAFE_INTEGER;

/** True for an item known only from its catalogue record: zero vector, no interactions, never seen. */
export function isUnseenItem(profile: ItemProfile): boolean {
  return profile.firstSeenMs > profile.lastSeenMs;
}

/** Throws `BadInputError` (`STORE_INVALID_DELTA`) unless `delta` can be merged into a `dimension`-d store. */
export function validateItemDelta(delta: ItemDelta, dimension: number): void {
  const bad = (why: string): never => {
    throw new BadInputError('STORE_INVALID_DELTA', `item delta for ${JSON.stringify(delta.itemId)}: ${why}`);
  };
  if (typeof delta.itemId !== 'string' || delta.itemId.length === 0) bad('empty item id');
  if (!Number.isFinite(delta.atMs)) bad(`atMs ${delta.atMs} is not a finite number`);
  if (delta.initialVector) checkVector(delta.initialVector, dimension, 'initialVector', bad);
  if (delta.vectorDelta) checkVector(delta.vectorDelta, dimension, 'vectorDelta', bad);
  if (delta.interactions !== undefined && !(Number.isFinite(delta.interactions) && delta.interactions >= 0)) {
    bad(`interactions ${delta.interactions} is not a finite number >= 0`);
  }
  if (delta.seenBy && !(delta.seenBy.id.length > 0 && Number.isFinite(delta.seenBy.atMs)))
    bad('invalid seenBy');
  if (delta.cooccurrence) {
    for (const [id, count] of delta.cooccurrence) {
      if (id.length === 0 || !(Number.isFinite(count) && count > 0))
        bad(`cooccurrence ${JSON.stringify(id)}: ${count}`);
    }
  }
}

/** Throws `BadInputError` (`STORE_INVALID_VECTOR`) unless `vector` has `dimension` finite entries. */
export function validateVector(vector: Float32Array, dimension: number, what: string): void {
  checkVector(vector, dimension, what, (why) => {
    throw new BadInputError('STORE_INVALID_VECTOR', `${what}: ${why}`);
  });
}

function checkVector(
  vector: Float32Array,
  dimension: number,
  what: string,
  bad: (why: string) => never,
): void {
  if (!(vector instanceof Float32Array)) bad(`${what} is not a Float32Array`);
  if (vector.length !== dimension) bad(`${what} has dimension ${vector.length}, the store has ${dimension}`);
  for (let i = 0; i < vector.length; i++) {
    if (!Number.isFinite(vector[i])) bad(`${what}[${i}] is not finite`);
  }
}

/** An item profile owned by one writer while it folds deltas in; see `cloneItem`. */
export interface MutableItemProfile {
  itemId: string;
  vector: Float32Array;
  recentUsers: TimedId[];
  interactionCount: number;
  popularity: { shortLog: number; longLog: number };
  cooccurrence: Map<string, number>;
  title: string | null;
  categories: readonly string[];
  firstSeenMs: number;
  lastSeenMs: number;
}

/**
 * A private copy of `profile` (or a new item) that `applyItemDelta` may change in place. Stores and the
 * stages' batch view clone an item once per batch and fold all its deltas into the copy: copying the
 * bounded co-occurrence map once per delta was the single largest cost of learning.
 */
export function cloneItem(profile: ItemProfile | undefined, itemId: string, dimension: number): MutableItemProfile {
  const base = profile ?? newItem(itemId, dimension);
  return {
    itemId: base.itemId,
    vector: Float32Array.from(base.vector),
    recentUsers: [...base.recentUsers],
    interactionCount: base.interactionCount,
    popularity: { ...base.popularity },
    cooccurrence: new Map(base.cooccurrence),
    title: base.title,
    categories: base.categories,
    firstSeenMs: base.firstSeenMs,
    lastSeenMs: base.lastSeenMs,
  };
}

/** Folds one delta into an owned profile, in place. Validates the delta first (`validateItemDelta`). */
export function applyItemDelta(item: MutableItemProfile, delta: ItemDelta, limits: ItemMergeLimits): void {
  validateItemDelta(delta, limits.dimension);
  applyValidItemDelta(item, delta, limits);
}

/** `applyItemDelta` for a delta the caller has already validated. */
export function applyValidItemDelta(item: MutableItemProfile, delta: ItemDelta, limits: ItemMergeLimits): void {
  if (delta.initialVector !== undefined && isUnseenItem(item)) item.vector.set(delta.initialVector);
  if (delta.vectorDelta) {
    const v = item.vector;
    for (let i = 0; i < v.length; i++) v[i]! += delta.vectorDelta[i]!;
  }
  if (delta.seenBy) insertRecent(item.recentUsers, delta.seenBy, limits.itemAudienceLength);
  const interactions = delta.interactions ?? 0;
  item.interactionCount += interactions;
  if (interactions > 0) {
    item.popularity.shortLog = logAddEvent(item.popularity.shortLog, delta.atMs, limits.popularityShortHalfLifeMs, interactions);
    item.popularity.longLog = logAddEvent(item.popularity.longLog, delta.atMs, limits.popularityLongHalfLifeMs, interactions);
  }
  if (delta.cooccurrence) addCounts(item.cooccurrence, delta.cooccurrence, item.itemId, limits.cooccurrenceLimit);
  if (isSighting(delta)) {
    item.firstSeenMs = Math.min(item.firstSeenMs, delta.atMs);
    item.lastSeenMs = Math.max(item.lastSeenMs, delta.atMs);
  }
}

/**
 * Whether a delta is a sighting of the item (moves first/last seen): every delta but one that only moves the
 * vector, which is what a sampled negative's BPR step sends. (A delta with no change at all is a sighting: the
 * routed writer's merge uses one to carry a first/last seen time.)
 */
export function isSighting(delta: ItemDelta): boolean {
  const vectorOnly =
    delta.vectorDelta !== undefined && !((delta.interactions ?? 0) > 0) && delta.seenBy === undefined && delta.cooccurrence === undefined && delta.initialVector === undefined;
  return !vectorOnly;
}

/**
 * Applies one delta to an item's profile (`undefined` = the item does not exist yet) and returns the new
 * profile; the input is not modified. For many deltas to one item, `cloneItem` once and `applyItemDelta`.
 */
export function mergeItemDelta(profile: ItemProfile | undefined, delta: ItemDelta, limits: ItemMergeLimits): ItemProfile {
  const item = cloneItem(profile, delta.itemId, limits.dimension);
  applyItemDelta(item, delta, limits);
  return item;
}

/**
 * Sets an item's title and categories, nothing else. An item that does not exist yet is created as an unseen
 * item (zero vector, no counts; `isUnseenItem` is true) whose first delta's `initialVector` still applies.
 */
export function applyItemMetadata(
  profile: ItemProfile | undefined,
  metadata: ItemMetadata,
  dimension: number,
): ItemProfile {
  const base = profile ?? newItem(metadata.itemId, dimension);
  return { ...base, title: metadata.title, categories: [...metadata.categories] };
}

function newItem(itemId: string, dimension: number): ItemProfile {
  return {
    itemId,
    vector: new Float32Array(dimension),
    recentUsers: [],
    interactionCount: 0,
    popularity: { shortLog: EMPTY_LOG_SUM, longLog: EMPTY_LOG_SUM },
    cooccurrence: new Map(),
    title: null,
    categories: [],
    firstSeenMs: UNSEEN_FIRST_SEEN_MS,
    lastSeenMs: UNSEEN_LAST_SEEN_MS,
  };
}

/** Union of two recency lists keeping each id's latest time; most recent first, ties by id; at most `limit`. */
export function mergeRecent(
  current: readonly TimedId[],
  added: readonly TimedId[],
  limit: number,
): TimedId[] {
  const latest = new Map<string, number>();
  for (const list of [current, added]) {
    for (const { id, atMs } of list) {
      const seen = latest.get(id);
      if (seen === undefined || atMs > seen) latest.set(id, atMs);
    }
  }
  return [...latest]
    .map(([id, atMs]) => ({ id, atMs }))
    .sort(byTimeDescThenId)
    .slice(0, limit);
}

/** `mergeRecent` of one entry into an owned list, in place: the hot path of every interaction. */
export function insertRecent(list: TimedId[], entry: TimedId, limit: number): void {
  const at = list.findIndex((e) => e.id === entry.id);
  if (at >= 0) {
    if (list[at]!.atMs >= entry.atMs) return;
    list.splice(at, 1);
  }
  let i = 0;
  while (i < list.length && byTimeDescThenId(list[i]!, entry) < 0) i++;
  list.splice(i, 0, entry);
  if (list.length > limit) list.length = limit;
}

function byTimeDescThenId(a: TimedId, b: TimedId): number {
  return b.atMs - a.atMs || compareIds(a.id, b.id);
}

/**
 * Counts added in place, for an owned map; `self` dropped; the `limit` largest kept (ties: the smaller id
 * stays), order unspecified. Eviction is batched: the map may grow to `limit` + `limit/4`
 * before it is cut back to the `limit` largest in one sort, since a scan for the smallest entry on every new
 * key dominated learning. Readers therefore see up to `1.25 × limit` entries. The cut is checked after each
 * new key, as the embedded store's typed lists do (`CooccurrenceLists.add`), so both cut a list at the same
 * key of a delta and an item that moves between them (the tiered store's hot and cold sides) ends the same.
 */
function addCounts(sum: Map<string, number>, added: ReadonlyMap<string, number>, self: string, limit: number): void {
  const most = limit + Math.floor(limit / 4);
  for (const [id, count] of added) {
    if (id === self || !(count > 0)) continue;
    const held = sum.get(id);
    sum.set(id, (held ?? 0) + count);
    if (held === undefined && sum.size > most) cutCounts(sum, limit);
  }
}

/** Keeps the `limit` largest counts; among equal counts the smaller id. */
function cutCounts(sum: Map<string, number>, limit: number): void {
  const kept = [...sum].sort((a, b) => b[1] - a[1] || compareIds(a[0], b[0])).slice(0, limit);
  sum.clear();
  for (const [id, count] of kept) sum.set(id, count);
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
