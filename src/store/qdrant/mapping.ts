import { createHash } from 'node:crypto';
import { FatalError } from '../../errors/index.ts';
import { EMPTY_LOG_SUM } from '../popularity.ts';
import type { ItemProfile, LearnedPositions, TimedId, UserProfile } from '../port.ts';

/**
 * How profiles are laid out as Qdrant points.
 *
 * Point ids must be unsigned integers or UUIDs, so a string id maps to a name-based UUID (version 5, SHA-1,
 * RFC 9562 §5.5) in `POINT_ID_NAMESPACE`; the original id travels in the payload as `id` (keyword-indexed, so
 * searches can exclude ids by filter) and is what the adapter returns.
 *
 * Payload (version `v: 1`). Lists are stored as parallel arrays: item ids can hold any character, including
 * the dots that Qdrant reads as key paths, so they are never used as payload keys.
 *
 * - users: `id`, `recentItemIds[]`, `recentItemAtMs[]` (most recent first), `interactionCount`, `consumed`
 *   (the Bloom filter's bytes, base64), `firstSeenMs`, `lastSeenMs`;
 * - items: `id`, `recentUserIds[]`, `recentUserAtMs[]`, `interactionCount`, `popularityShortLog`,
 *   `popularityLongLog` (float-indexed, ordered by for `popularItems`; both left out while `-Infinity`, which
 *   JSON cannot carry, so items without events never appear in the popularity order), `cooccurrenceIds[]`,
 *   `cooccurrenceCounts[]` (largest first), `title` (string or null), `categories[]`, `firstSeenMs`,
 *   `lastSeenMs`;
 * - both, when written by the tiered store (`LearnedPositions`): `learnedSources[]` (`topic:partition`) and
 *   `learnedOffsets[]`, the highest offset per source partition whose learning the point holds; absent on
 *   points written without positions (read as none);
 * - users written with routed item writes: `outbox`, the item changes of the write's events (opaque text,
 *   `UserProfile.outbox`), excluded from user reads and read by `readOutboxes` alone.
 */

export const PAYLOAD_VERSION = 1;

/** Payload keys that carry an index, with their Qdrant index type. */
export const ID_KEY = 'id';
export const POPULARITY_KEY = 'popularityLongLog';
/** A user's `outbox` (routed item writes): read only by `readOutboxes`, left out of every other read. */
export const OUTBOX_KEY = 'outbox';

/** Namespace of starstream's name-based point ids (a fixed random UUID; changing it orphans every point). */
export const POINT_ID_NAMESPACE = '6f1c3a52-8e0b-4d5e-9b7a-2c4d8e1f0a93';

const namespaceBytes = uuidBytes(POINT_ID_NAMESPACE);

/** The Qdrant point id of a user or item id: UUIDv5(`POINT_ID_NAMESPACE`, id). */
export function pointId(id: string): string {
  return uuidV5(id, namespaceBytes);
}

/** RFC 9562 name-based UUID, version 5 (SHA-1). */
export function uuidV5(name: string, namespace: string | Buffer): string {
  const ns = typeof namespace === 'string' ? uuidBytes(namespace) : namespace;
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error(`not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

export type Payload = Record<string, unknown>;

export interface PointStruct {
  readonly id: string;
  readonly vector: number[];
  readonly payload: Payload;
}

/** A point as `retrieve` returns it; only the fields the mapping reads. */
export interface RetrievedPoint {
  readonly id: string | number;
  readonly payload?: Record<string, unknown> | null | undefined;
  readonly vector?: unknown;
}

export function userToPoint(user: UserProfile, historyLength: number): PointStruct {
  const recent = user.recentItems.slice(0, historyLength);
  return {
    id: pointId(user.userId),
    vector: Array.from(user.vector),
    payload: {
      v: PAYLOAD_VERSION,
      [ID_KEY]: user.userId,
      recentItemIds: recent.map((r) => r.id),
      recentItemAtMs: recent.map((r) => r.atMs),
      interactionCount: user.interactionCount,
      consumed: Buffer.from(
        user.consumed.buffer,
        user.consumed.byteOffset,
        user.consumed.byteLength,
      ).toString('base64'),
      firstSeenMs: user.firstSeenMs,
      lastSeenMs: user.lastSeenMs,
      ...learnedPayload(user.learned),
      ...(user.outbox !== undefined ? { [OUTBOX_KEY]: user.outbox } : {}),
    },
  };
}

function learnedPayload(learned: LearnedPositions | undefined): Payload {
  if (!learned || learned.size === 0) return {};
  return { learnedSources: [...learned.keys()], learnedOffsets: [...learned.values()] };
}

export function itemToPoint(item: ItemProfile): PointStruct {
  const payload: Payload = {
    v: PAYLOAD_VERSION,
    [ID_KEY]: item.itemId,
    recentUserIds: item.recentUsers.map((r) => r.id),
    recentUserAtMs: item.recentUsers.map((r) => r.atMs),
    interactionCount: item.interactionCount,
    cooccurrenceIds: [...item.cooccurrence.keys()],
    cooccurrenceCounts: [...item.cooccurrence.values()],
    title: item.title,
    categories: [...item.categories],
    firstSeenMs: item.firstSeenMs,
    lastSeenMs: item.lastSeenMs,
    ...learnedPayload(item.learned),
  };
  if (item.popularity.shortLog !== EMPTY_LOG_SUM) payload['popularityShortLog'] = item.popularity.shortLog;
  if (item.popularity.longLog !== EMPTY_LOG_SUM) payload[POPULARITY_KEY] = item.popularity.longLog;
  return { id: pointId(item.itemId), vector: Array.from(item.vector), payload };
}

/** Decodes a retrieved user point; a payload this version cannot read is a `FatalError` (`STORE_PAYLOAD_INVALID`). */
export function pointToUser(point: RetrievedPoint, dimension: number): UserProfile {
  const p = new PayloadReader(point, 'user');
  return {
    userId: p.string(ID_KEY),
    vector: p.vector(dimension),
    recentItems: p.timedIds('recentItemIds', 'recentItemAtMs'),
    interactionCount: p.number('interactionCount'),
    consumed: p.bytes('consumed'),
    firstSeenMs: p.number('firstSeenMs'),
    lastSeenMs: p.number('lastSeenMs'),
    ...p.learned(),
  };
}

export function pointToItem(point: RetrievedPoint, dimension: number): ItemProfile {
  const p = new PayloadReader(point, 'item');
  const ids = p.strings('cooccurrenceIds');
  const counts = p.numbers('cooccurrenceCounts');
  if (ids.length !== counts.length) p.fail('cooccurrenceIds and cooccurrenceCounts differ in length');
  return {
    itemId: p.string(ID_KEY),
    vector: p.vector(dimension),
    recentUsers: p.timedIds('recentUserIds', 'recentUserAtMs'),
    interactionCount: p.number('interactionCount'),
    popularity: {
      shortLog: p.optionalNumber('popularityShortLog') ?? EMPTY_LOG_SUM,
      longLog: p.optionalNumber(POPULARITY_KEY) ?? EMPTY_LOG_SUM,
    },
    cooccurrence: new Map(ids.map((id, i) => [id, counts[i]!])),
    title: p.nullableString('title'),
    categories: p.strings('categories'),
    firstSeenMs: p.number('firstSeenMs'),
    lastSeenMs: p.number('lastSeenMs'),
    ...p.learned(),
  };
}

/** The original id of a scored or scrolled point (its payload `id`). */
export function payloadId(point: RetrievedPoint): string {
  return new PayloadReader(point, 'point').string(ID_KEY);
}

class PayloadReader {
  private readonly payload: Record<string, unknown>;

  constructor(
    private readonly point: RetrievedPoint,
    private readonly kind: string,
  ) {
    this.payload = point.payload ?? {};
  }

  fail(why: string): never {
    throw new FatalError('STORE_PAYLOAD_INVALID', `${this.kind} point ${String(this.point.id)}: ${why}`);
  }

  string(key: string): string {
    const value = this.payload[key];
    return typeof value === 'string' ? value : this.fail(`${key} is not a string`);
  }

  nullableString(key: string): string | null {
    const value = this.payload[key];
    return value === null || value === undefined
      ? null
      : typeof value === 'string'
        ? value
        : this.fail(`${key} is not a string`);
  }

  number(key: string): number {
    const value = this.payload[key];
    return typeof value === 'number' ? value : this.fail(`${key} is not a number`);
  }

  optionalNumber(key: string): number | undefined {
    const value = this.payload[key];
    return value === undefined || value === null ? undefined : this.number(key);
  }

  /** Base64 bytes; a point written before the field existed reads as an empty filter. */
  bytes(key: string): Uint8Array {
    const value = this.payload[key] ?? '';
    if (typeof value !== 'string') this.fail(`${key} is not a base64 string`);
    // A copy: small Buffers share Node's pool, and callers update the filter in place.
    return new Uint8Array(Buffer.from(value as string, 'base64'));
  }

  strings(key: string): string[] {
    const value = this.payload[key] ?? [];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
      this.fail(`${key} is not a string array`);
    return value as string[];
  }

  numbers(key: string): number[] {
    const value = this.payload[key] ?? [];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'number'))
      this.fail(`${key} is not a number array`);
    return value as number[];
  }

  timedIds(idsKey: string, atKey: string): TimedId[] {
    const ids = this.strings(idsKey);
    const at = this.numbers(atKey);
    if (ids.length !== at.length) this.fail(`${idsKey} and ${atKey} differ in length`);
    return ids.map((id, i) => ({ id, atMs: at[i]! }));
  }

  /** `learned` when the point carries positions, else nothing (the field stays absent). */
  learned(): { learned?: LearnedPositions } {
    if (this.payload['learnedSources'] === undefined) return {};
    const sources = this.strings('learnedSources');
    const offsets = this.numbers('learnedOffsets');
    if (sources.length !== offsets.length) this.fail('learnedSources and learnedOffsets differ in length');
    return { learned: new Map(sources.map((key, i) => [key, offsets[i]!])) };
  }

  vector(dimension: number): Float32Array {
    const value = this.point.vector;
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'number'))
      this.fail('has no unnamed dense vector');
    if (value.length !== dimension)
      this.fail(`vector has dimension ${value.length}, the store has ${dimension}`);
    return Float32Array.from(value as number[]);
  }
}
