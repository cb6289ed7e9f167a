import { QdrantClient } from '@qdrant/js-client-rest';
import type { Interaction } from '../../src/domain/events.ts';
import type { LogRecord } from '../../src/eventlog/port.ts';
import type { Engine } from '../../src/main.ts';
import type { ItemProfile, VectorStore } from '../../src/store/port.ts';
import { uniqueName } from '../helpers.ts';
import type { QdrantServer } from './qdrant-server.ts';

/** What the tiered-store suites share: a small interleaved world, its records, and Qdrant collections per test. */

export const T0 = Date.UTC(2025, 0, 1);
export const INTERACTIONS_TOPIC = 'starstream.interactions';

/** A collection prefix of its own for one test (`<tag>_…_`). */
export function collectionPrefix(tag: string): string {
  return `${uniqueName(tag).replace(/-/g, '_')}_`;
}

export async function dropCollections(t: QdrantServer, p: string): Promise<void> {
  const client = new QdrantClient({ url: t.url, checkCompatibility: false, ...(t.apiKey ? { headers: { 'api-key': t.apiKey } } : {}) });
  for (const name of [`${p}users`, `${p}items`]) await client.deleteCollection(name).catch(() => undefined);
}

export function qdrantSection(t: QdrantServer, p: string): Record<string, unknown> {
  return { url: t.url, collectionPrefix: p, ...(t.apiKey ? { apiKey: t.apiKey } : {}) };
}

/** `count` events of `users` users over `items` items, a second apart, in a fixed pseudo-random order. */
export function stream(count: number, users: number, items: number, tag: string): Interaction[] {
  return Array.from({ length: count }, (_, i) => ({
    eventId: `${tag}-${i}`,
    userId: `u${(i * 7919) % users}`,
    itemId: `i${(i * 104_729 + Math.floor(i / 3)) % items}`,
    type: 'view' as const,
    value: null,
    timestampMs: T0 + i * 1_000,
    context: {},
  }));
}

/** How many of `events` each key (`of`) has. */
export function tally(events: readonly Interaction[], of: (e: Interaction) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) out.set(of(e), (out.get(of(e)) ?? 0) + 1);
  return out;
}

/** `events` as records of partition 0, at offsets from `firstOffset` on (source positions are part of the state). */
export function records(engine: Engine, events: readonly Interaction[], firstOffset = 0): LogRecord[] {
  return events.map((e, i) => ({
    topic: INTERACTIONS_TOPIC,
    partition: 0,
    offset: String(firstOffset + i),
    key: Buffer.from(e.userId),
    value: engine.codecs.interaction.encode(e),
    headers: {},
    timestampMs: Date.now(),
  }));
}

/**
 * An item's comparable form: `Map` order is not part of the state (co-occurrence is stored largest first), and
 * Qdrant's JSON may round a popularity log-sum in its last digit (1e-12 relative), so those compare rounded.
 * `vector: false` leaves the vector out (where learning is not seeded per event).
 */
export function comparable({ vector, ...item }: ItemProfile, options: { readonly vector?: boolean } = {}): unknown {
  const round = (x: number) => Number(x.toPrecision(12));
  return {
    ...item,
    ...(options.vector === false ? {} : { vector }),
    popularity: { shortLog: round(item.popularity.shortLog), longLog: round(item.popularity.longLog) },
    cooccurrence: [...item.cooccurrence].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
  };
}

/**
 * What `store` (a new process's, over the collections under test) reads for these users and items: users
 * without their vectors, items `comparable` without theirs (the vectors depend on negatives not seeded per event).
 */
export async function durableState(store: VectorStore, userIds: readonly string[], itemIds: readonly string[]) {
  const users = await store.getUsers(userIds);
  const items = await store.getItems(itemIds);
  return {
    users: new Map([...users].map(([id, { vector: _v, ...rest }]) => [id, rest])),
    items: new Map([...items].map(([id, item]) => [id, comparable(item, { vector: false })])),
  };
}
