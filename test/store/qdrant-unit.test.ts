import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { QdrantClient } from '@qdrant/js-client-rest';
import { parseConfig } from '../../src/config/load.ts';
import { BadInputError, FatalError, StarstreamError, TransientError } from '../../src/errors/index.ts';
import { EMPTY_LOG_SUM } from '../../src/store/popularity.ts';
import type { ItemProfile } from '../../src/store/port.ts';
import { createQdrantStore, type QdrantApi, type StoreConfig } from '../../src/store/qdrant/adapter.ts';
import { classifyQdrantError } from '../../src/store/qdrant/errors.ts';
import { PointsRest } from '../../src/store/qdrant/points-rest.ts';
import { KeyedLock } from '../../src/util/keyed-lock.ts';
import {
  itemToPoint,
  pointId,
  pointToItem,
  pointToUser,
  POPULARITY_KEY,
  userToPoint,
  uuidV5,
} from '../../src/store/qdrant/mapping.ts';
import { contractStoreConfig, runVectorStoreContract } from './contract.ts';

/**
 * Unit tests of the Qdrant adapter that need no Qdrant: mapping, request building against a scripted in-memory
 * fake of the REST client, error classification against a node:http fake server driven by the real client,
 * and the whole contract suite over the fake (which proves the adapter's logic, not Qdrant's behaviour;
 * `qdrant.test.ts` runs the same suite against a real server).
 */

const DAY = 86_400_000;
const T0 = 1_760_000_000_000;
const FAST_RETRY = { retries: 2, initialDelayMs: 1, maxDelayMs: 2, multiplier: 1, jitter: 0 };

function storeConfig(
  overrides: Record<string, unknown> = {},
  qdrant: Record<string, unknown> = {},
): StoreConfig {
  return parseConfig({
    store: {
      kind: 'qdrant',
      dimension: 4,
      retry: FAST_RETRY,
      ...overrides,
      qdrant: { collectionPrefix: 't_', ...qdrant },
    },
  }).store;
}

// ---------------------------------------------------------------------------------------------------------------
// A scripted, in-memory fake of the parts of QdrantClient the adapter uses. Payloads go through JSON (as on
// the wire) and vectors are stored as float32 (as Qdrant stores them). Every method yields to the event loop
// first, so concurrent callers interleave the way they would over HTTP.

/* eslint-disable @typescript-eslint/no-explicit-any -- the fake reads request bodies loosely, as a server does */

interface FakePoint {
  vector: Float32Array;
  payload: Record<string, unknown>;
}

interface FakeCollection {
  size: number;
  distance: string;
  points: Map<string, FakePoint>;
  indexes: Map<string, string>;
  createArgs: unknown;
}

class FakeApiError extends Error {
  constructor(
    readonly status: number,
    error: string,
  ) {
    super(`status ${status}`);
    this.data = { status: { error } };
  }
  readonly data: unknown;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const wire = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** Qdrant's `with_payload: { exclude: [...] }` selector. */
function isExclude(selector: unknown): selector is { exclude: string[] } {
  return typeof selector === 'object' && selector !== null && Array.isArray((selector as { exclude?: unknown }).exclude);
}

class FakeQdrant {
  readonly collections = new Map<string, FakeCollection>();
  readonly calls: { method: string; collection: string; args: any }[] = [];
  /** Errors to throw from the next calls, in order (then calls succeed again). */
  readonly failures: unknown[] = [];

  private async enter(method: string, collection: string, args: unknown): Promise<void> {
    this.calls.push({ method, collection, args });
    await tick();
    const failure = this.failures.shift();
    if (failure) throw failure;
  }

  private get(name: string): FakeCollection {
    const c = this.collections.get(name);
    if (!c) throw new FakeApiError(404, `Collection \`${name}\` doesn't exist!`);
    return c;
  }

  callsOf(method: string) {
    return this.calls.filter((c) => c.method === method);
  }

  async collectionExists(name: string) {
    await this.enter('collectionExists', name, {});
    return { exists: this.collections.has(name) };
  }

  async getCollection(name: string) {
    await this.enter('getCollection', name, {});
    const c = this.get(name);
    return {
      status: 'green',
      points_count: c.points.size,
      config: { params: { vectors: { size: c.size, distance: c.distance } } },
      payload_schema: Object.fromEntries(
        [...c.indexes].map(([field, type]) => [field, { data_type: type, points: 0 }]),
      ),
    };
  }

  async createCollection(name: string, args: any) {
    await this.enter('createCollection', name, args);
    if (this.collections.has(name)) throw new FakeApiError(409, `Collection \`${name}\` already exists!`);
    this.collections.set(name, {
      size: args.vectors.size,
      distance: args.vectors.distance,
      points: new Map(),
      indexes: new Map(),
      createArgs: args,
    });
    return true;
  }

  async createPayloadIndex(name: string, args: any) {
    await this.enter('createPayloadIndex', name, args);
    this.get(name).indexes.set(args.field_name, args.field_schema);
    return { operation_id: 0, status: 'completed' };
  }

  async retrieve(name: string, args: any) {
    await this.enter('retrieve', name, args);
    const c = this.get(name);
    const out = [];
    for (const id of args.ids as string[]) {
      const p = c.points.get(id);
      if (p) out.push(this.record(id, p, args.with_payload, args.with_vector));
    }
    return out;
  }

  async upsert(name: string, args: any) {
    await this.enter('upsert', name, args);
    this.applyUpsert(this.get(name), args.points);
    return { operation_id: 0, status: 'completed' };
  }

  async batchUpdate(name: string, args: any) {
    await this.enter('batchUpdate', name, args);
    const c = this.get(name);
    for (const op of args.operations) {
      if (op.upsert) this.applyUpsert(c, op.upsert.points);
      else if (op.set_payload) {
        for (const id of op.set_payload.points) {
          const p = c.points.get(id);
          if (!p) throw new FakeApiError(404, `No point with id ${id} found`);
          Object.assign(p.payload, wire(op.set_payload.payload));
        }
      } else throw new Error(`fake: unsupported operation ${JSON.stringify(op)}`);
    }
    return args.operations.map(() => ({ operation_id: 0, status: 'completed' }));
  }

  async query(name: string, args: any) {
    await this.enter('query', name, args);
    const c = this.get(name);
    const excluded = this.mustNotIds(args.filter);
    const q = args.query as number[];
    const scored = [...c.points]
      .filter(([, p]) => !excluded.has(p.payload['id'] as string))
      .map(([id, p]) => ({
        ...this.record(id, p, args.with_payload, false),
        version: 0,
        score: Math.fround(p.vector.reduce((s, x, i) => s + x * q[i]!, 0)),
      }))
      .sort((a, b) => b.score - a.score);
    return { points: scored.slice(0, args.limit) };
  }

  async scroll(name: string, args: any) {
    await this.enter('scroll', name, args);
    const c = this.get(name);
    const key: string = args.order_by.key;
    if (c.indexes.get(key) !== 'float')
      throw new FakeApiError(400, `No range index for \`order_by\` key: \`${key}\``);
    const sign = args.order_by.direction === 'desc' ? -1 : 1;
    const points = [...c.points]
      .filter(([, p]) => typeof p.payload[key] === 'number')
      .sort(([, a], [, b]) => sign * ((a.payload[key] as number) - (b.payload[key] as number)))
      .slice(0, args.limit)
      .map(([id, p]) => this.record(id, p, args.with_payload, args.with_vector));
    return { points, next_page_offset: null };
  }

  async count(name: string, args: any) {
    await this.enter('count', name, args);
    return { count: this.get(name).points.size };
  }

  private applyUpsert(c: FakeCollection, points: any[]): void {
    for (const p of wire(points)) {
      if (p.vector.length !== c.size) throw new FakeApiError(400, `Wrong input: Vector dimension error`);
      c.points.set(p.id, { vector: Float32Array.from(p.vector), payload: p.payload ?? {} });
    }
  }

  private record(id: string, p: FakePoint, withPayload: unknown, withVector: unknown) {
    const payload =
      withPayload === true
        ? p.payload
        : Array.isArray(withPayload)
          ? Object.fromEntries(withPayload.filter((k) => k in p.payload).map((k) => [k, p.payload[k]]))
          : isExclude(withPayload)
            ? Object.fromEntries(Object.entries(p.payload).filter(([k]) => !withPayload.exclude.includes(k)))
            : undefined;
    return wire({ id, payload, vector: withVector ? Array.from(p.vector) : undefined });
  }

  private mustNotIds(filter: any): Set<string> {
    if (!filter) return new Set();
    const keys = Object.keys(filter);
    const cond = filter.must_not?.[0];
    if (
      keys.join() !== 'must_not' ||
      filter.must_not.length !== 1 ||
      cond.key !== 'id' ||
      !Array.isArray(cond.match?.any)
    ) {
      throw new Error(`fake: unsupported filter ${JSON.stringify(filter)}`);
    }
    return new Set(cond.match.any);
  }
}

/* eslint-enable @typescript-eslint/no-explicit-any */

const asApi = (fake: FakeQdrant) => fake as unknown as QdrantApi;

async function readyStore(
  fake = new FakeQdrant(),
  config = storeConfig(),
  extra: { onRequest?: (op: string, s: number, o: string) => void } = {},
) {
  const store = createQdrantStore({ config, client: asApi(fake), ...extra });
  await store.init();
  return { store, fake };
}

// ---------------------------------------------------------------------------------------------------------------

describe('qdrant mapping', () => {
  it('point ids are RFC 9562 UUIDv5, deterministic, distinct per id', () => {
    // The RFC's DNS-namespace example value.
    assert.equal(
      uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'),
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
    assert.equal(pointId('item-1'), pointId('item-1'));
    assert.notEqual(pointId('item-1'), pointId('item-2'));
    assert.match(pointId('ü/é.x'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('users and items survive the JSON wire; -Infinity popularity is left out; ids with dots stay values', () => {
    const consumed = new Uint8Array([0, 255, 7]);
    const user = {
      userId: 'u.1',
      vector: Float32Array.from([0.1, -0.2, 0.3, 1e-7]),
      recentItems: [
        { id: 'a.b', atMs: 3 },
        { id: 'c', atMs: 2 },
        { id: 'd', atMs: 1 },
      ],
      interactionCount: 3,
      consumed,
      firstSeenMs: 1,
      lastSeenMs: 3,
    };
    const userPoint = wire(userToPoint(user, 2));
    const back = pointToUser(userPoint, 4);
    assert.deepEqual([...back.vector], [...user.vector]);
    assert.deepEqual(back.recentItems, user.recentItems.slice(0, 2), 'history bounded to userHistoryLength');
    assert.deepEqual([...back.consumed], [0, 255, 7]);
    assert.equal(back.userId, 'u.1');

    const item: ItemProfile = {
      itemId: 'i.1',
      vector: Float32Array.from([1, 2, 3, 4]),
      recentUsers: [{ id: 'u', atMs: 5 }],
      interactionCount: 1,
      popularity: { shortLog: EMPTY_LOG_SUM, longLog: 12.5 },
      cooccurrence: new Map([
        ['x.y', 3],
        ['z', 1],
      ]),
      title: null,
      categories: ['c'],
      firstSeenMs: 5,
      lastSeenMs: 5,
    };
    const point = itemToPoint(item);
    assert.equal('popularityShortLog' in point.payload, false);
    assert.equal(point.payload[POPULARITY_KEY], 12.5);
    assert.equal(
      Object.keys(point.payload).some((k) => k.includes('.')),
      false,
    );
    const itemBack = pointToItem(wire(point), 4);
    assert.deepEqual({ ...itemBack, vector: [...itemBack.vector] }, { ...item, vector: [...item.vector] });
  });

  it('an unreadable payload is a FatalError STORE_PAYLOAD_INVALID', () => {
    const bad = {
      id: 'x',
      payload: { id: 'u', recentItemIds: ['a'], recentItemAtMs: [] },
      vector: [0, 0, 0, 0],
    };
    assert.throws(
      () => pointToUser(bad, 4),
      (err) => err instanceof FatalError && err.code === 'STORE_PAYLOAD_INVALID',
    );
    const wrongDim = {
      id: 'x',
      payload: { id: 'u', interactionCount: 0, firstSeenMs: 0, lastSeenMs: 0 },
      vector: [0, 0],
    };
    assert.throws(() => pointToUser(wrongDim, 4), /dimension 2/);
  });
});

describe('qdrant adapter: collections', () => {
  it('init creates both collections (size, Dot, HNSW, shards) and the payload indexes; a second init creates nothing', async () => {
    const fake = new FakeQdrant();
    const config = storeConfig(
      {},
      { hnswM: 24, hnswEfConstruction: 200, shardNumber: 2, replicationFactor: 3 },
    );
    await readyStore(fake, config);
    const items = fake.collections.get('t_items')!;
    assert.deepEqual(items.createArgs, {
      vectors: { size: 4, distance: 'Dot' },
      hnsw_config: { m: 24, ef_construct: 200 },
      shard_number: 2,
      replication_factor: 3,
    });
    assert.deepEqual(
      [...items.indexes],
      [
        ['id', 'keyword'],
        ['popularityLongLog', 'float'],
      ],
    );
    assert.deepEqual([...fake.collections.get('t_users')!.indexes], [['id', 'keyword']]);

    const before = fake.calls.length;
    const again = createQdrantStore({ config, client: asApi(fake) });
    const reports = await again.ensureCollections();
    assert.deepEqual(
      reports.map((r) => [r.name, r.status, r.indexesCreated]),
      [
        ['t_users', 'exists', []],
        ['t_items', 'exists', []],
      ],
    );
    assert.deepEqual(
      fake.calls.slice(before).map((c) => c.method),
      ['collectionExists', 'getCollection', 'collectionExists', 'getCollection'],
    );
  });

  it('an existing collection with another size or distance is STORE_SCHEMA_MISMATCH naming both values', async () => {
    const fake = new FakeQdrant();
    await readyStore(fake, storeConfig({ dimension: 16 }));
    await assert.rejects(readyStore(fake, storeConfig({ dimension: 4 })), (err) => {
      assert.ok(err instanceof FatalError);
      assert.equal(err.code, 'STORE_SCHEMA_MISMATCH');
      assert.match(
        err.message,
        /t_users has vector size 16 and distance Dot; the config wants vector size 4/,
      );
      return true;
    });
    fake.collections.get('t_users')!.distance = 'Cosine';
    await assert.rejects(
      readyStore(fake, storeConfig({ dimension: 16 })),
      /distance Cosine; the config wants vector size 16 \(store.dimension\) and distance Dot/,
    );
  });

  it('with createCollections false a missing collection is STORE_COLLECTION_MISSING', async () => {
    await assert.rejects(
      readyStore(new FakeQdrant(), storeConfig({}, { createCollections: false })),
      (err) => err instanceof FatalError && err.code === 'STORE_COLLECTION_MISSING',
    );
  });

  it('losing a creation race to another instance is fine', async () => {
    const fake = new FakeQdrant();
    const original = fake.createCollection.bind(fake);
    fake.createCollection = async (name: string, args: unknown) => {
      await original(name, args); // the other instance wins…
      return original(name, args); // …and ours gets 409
    };
    await readyStore(fake);
    assert.equal(fake.collections.size, 2);
  });

  it('refuses calls before init (STORE_NOT_INITIALIZED) and after close (STORE_CLOSED)', async () => {
    const fake = new FakeQdrant();
    const store = createQdrantStore({ config: storeConfig(), client: asApi(fake) });
    await assert.rejects(
      store.getUsers(['u']),
      (err) => err instanceof FatalError && err.code === 'STORE_NOT_INITIALIZED',
    );
    await store.init();
    await store.close();
    await assert.rejects(store.counts(), (err) => err instanceof FatalError && err.code === 'STORE_CLOSED');
    await assert.rejects(store.init(), (err) => err instanceof FatalError && err.code === 'STORE_CLOSED');
  });
});

describe('qdrant adapter: requests', () => {
  const v = (...xs: number[]) => Float32Array.from(xs);

  it('applyItemDeltas coalesces a call into one retrieve and one upsert (wait: true), chunked by maxBatchPoints', async () => {
    const { store, fake } = await readyStore();
    fake.calls.length = 0;
    await store.applyItemDeltas([
      { itemId: 'a', initialVector: v(1, 0, 0, 0), interactions: 1, atMs: T0 },
      { itemId: 'b', initialVector: v(0, 1, 0, 0), interactions: 1, atMs: T0 },
      { itemId: 'a', vectorDelta: v(1, 0, 0, 0), interactions: 1, atMs: T0 + 1 },
    ]);
    assert.deepEqual(
      fake.calls.map((c) => c.method),
      ['retrieve', 'upsert'],
    );
    const [retrieve, upsert] = fake.calls;
    assert.deepEqual(retrieve!.args, {
      ids: [pointId('a'), pointId('b')],
      with_payload: true,
      with_vector: true,
    });
    assert.equal(upsert!.args.wait, true);
    assert.equal(upsert!.args.points.length, 2);
    assert.deepEqual(upsert!.args.points[0].vector, [2, 0, 0, 0]);
    assert.equal(upsert!.args.points[0].payload.interactionCount, 2);

    const small = await readyStore(new FakeQdrant(), storeConfig({}, { maxBatchPoints: 2 }));
    small.fake.calls.length = 0;
    await small.store.applyItemDeltas(
      ['x', 'y', 'z'].map((itemId) => ({ itemId, initialVector: v(1, 1, 1, 1), atMs: T0 })),
    );
    assert.deepEqual(
      small.fake.calls.map((c) => [c.method, c.args.ids?.length ?? c.args.points.length]),
      [
        ['retrieve', 2],
        ['retrieve', 1],
        ['upsert', 2],
        ['upsert', 1],
      ],
    );
  });

  it('a bad delta rejects the whole call before any request', async () => {
    const { store, fake } = await readyStore();
    fake.calls.length = 0;
    await assert.rejects(
      store.applyItemDeltas([
        { itemId: 'a', atMs: T0 },
        { itemId: 'b', vectorDelta: v(1), atMs: T0 },
      ]),
      (err) => err instanceof BadInputError && err.code === 'STORE_INVALID_DELTA',
    );
    await assert.rejects(
      store.putUsers([
        {
          userId: 'u',
          vector: v(1, 2),
          recentItems: [],
          interactionCount: 0,
          consumed: new Uint8Array(0),
          firstSeenMs: 0,
          lastSeenMs: 0,
        },
      ]),
      BadInputError,
    );
    await assert.rejects(store.searchItems(v(1, 2, 3), 3), BadInputError);
    await assert.rejects(store.searchItems(v(1, 2, 3, 4), -1), BadInputError);
    assert.equal(fake.calls.length, 0);
  });

  it('searches exclude ids with a must_not filter on the keyword id field, or by over-fetching', async () => {
    const { store, fake } = await readyStore(new FakeQdrant(), storeConfig({}, { hnswEfSearch: 99 }));
    await store.applyItemDeltas(
      ['a', 'b', 'c', 'd'].map((itemId, i) => ({ itemId, initialVector: v(4 - i, 0, 0, 0), atMs: T0 })),
    );
    fake.calls.length = 0;
    const found = await store.searchItems(v(1, 0, 0, 0), 2, new Set(['a']));
    assert.deepEqual(found, [
      { id: 'b', score: 3 },
      { id: 'c', score: 2 },
    ]);
    assert.deepEqual(fake.calls[0]!.args, {
      query: [1, 0, 0, 0],
      limit: 2,
      filter: { must_not: [{ key: 'id', match: { any: ['a'] } }] },
      params: { hnsw_ef: 99 },
      with_payload: ['id'],
      with_vector: false,
    });
    await store.searchUsers(v(1, 0, 0, 0), 3);
    assert.equal(fake.calls[1]!.collection, 't_users');
    assert.equal(fake.calls[1]!.args.filter, undefined);

    const over = await readyStore(new FakeQdrant(), storeConfig({}, { excludeStrategy: 'overfetch' }));
    await over.store.applyItemDeltas(
      ['a', 'b', 'c', 'd'].map((itemId, i) => ({ itemId, initialVector: v(4 - i, 0, 0, 0), atMs: T0 })),
    );
    over.fake.calls.length = 0;
    assert.deepEqual(
      (await over.store.searchItems(v(1, 0, 0, 0), 2, new Set(['a', 'c']))).map((n) => n.id),
      ['b', 'd'],
    );
    assert.equal(over.fake.calls[0]!.args.limit, 4);
    assert.equal(over.fake.calls[0]!.args.filter, undefined);
  });

  it('popularItems scrolls ordered by popularityLongLog descending and returns decayed counts', async () => {
    const { store, fake } = await readyStore();
    await store.applyItemDeltas([
      { itemId: 'a', initialVector: v(0, 0, 0, 0), interactions: 1, atMs: T0 },
      { itemId: 'b', initialVector: v(0, 0, 0, 0), interactions: 3, atMs: T0 },
    ]);
    fake.calls.length = 0;
    const popular = await store.popularItems(5, T0 + 30 * DAY);
    assert.deepEqual(fake.calls[0]!.args, {
      limit: 5,
      order_by: { key: 'popularityLongLog', direction: 'desc' },
      with_payload: ['id', 'popularityLongLog'],
      with_vector: false,
    });
    assert.deepEqual(
      popular.map((n) => n.id),
      ['b', 'a'],
    );
    assert.ok(Math.abs(popular[0]!.score - 1.5) < 1e-9);
  });

  it('putItemMetadata sets the payload of existing items and creates missing ones, in one batch request', async () => {
    const { store, fake } = await readyStore();
    await store.applyItemDeltas([{ itemId: 'old', initialVector: v(1, 1, 1, 1), interactions: 1, atMs: T0 }]);
    fake.calls.length = 0;
    await store.putItemMetadata([
      { itemId: 'old', title: 'Old', categories: ['x'] },
      { itemId: 'new', title: 'New', categories: [] },
    ]);
    assert.deepEqual(
      fake.calls.map((c) => c.method),
      ['retrieve', 'batchUpdate'],
    );
    assert.deepEqual(fake.calls[0]!.args.with_vector, false);
    const ops = fake.calls[1]!.args.operations;
    assert.equal(ops.length, 2);
    assert.equal(ops[0].upsert.points[0].payload.id, 'new');
    assert.deepEqual(ops[1], {
      set_payload: { payload: { title: 'Old', categories: ['x'] }, points: [pointId('old')] },
    });
  });

  it('one process: concurrent calls on one item are serialized; two processes on one item lose updates (why items need one writer)', async () => {
    const fake = new FakeQdrant();
    const { store } = await readyStore(fake);
    const delta = { itemId: 'hot', initialVector: v(0, 0, 0, 0), interactions: 1, atMs: T0 };
    await Promise.all(Array.from({ length: 20 }, () => store.applyItemDeltas([delta])));
    assert.equal((await store.getItems(['hot'])).get('hot')!.interactionCount, 20);

    const other = createQdrantStore({ config: storeConfig(), client: asApi(fake) });
    await other.init();
    await Promise.all([store.applyItemDeltas([delta]), other.applyItemDeltas([delta])]);
    assert.equal(
      (await store.getItems(['hot'])).get('hot')!.interactionCount,
      21,
      'read-modify-write from two writers loses one',
    );
  });

  it('KeyedLock runs calls that share a key one after another, others in parallel', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const job = (name: string) => async () => {
      log.push(`${name}+`);
      await tick();
      log.push(`${name}-`);
    };
    await Promise.all([
      lock.run(['a', 'b'], job('1')),
      lock.run(['b', 'a'], job('2')),
      lock.run(['c'], job('3')),
    ]);
    const at = (entry: string) => log.indexOf(entry);
    assert.ok(at('2+') > at('1-'), `2 waits for 1: ${log.join(' ')}`);
    assert.ok(at('3+') < at('1-'), `3 runs beside 1: ${log.join(' ')}`);
    assert.equal(lock.size, 0);
  });

  it('transient failures are retried with the store.retry policy; onRequest sees every attempt', async () => {
    const outcomes: [string, string][] = [];
    const fake = new FakeQdrant();
    const { store } = await readyStore(fake, storeConfig(), {
      onRequest: (op, seconds, outcome) => {
        assert.ok(seconds >= 0);
        outcomes.push([op, outcome]);
      },
    });
    outcomes.length = 0;
    fake.failures.push(
      new FakeApiError(503, 'busy'),
      Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }),
    );
    assert.deepEqual(await store.counts(), { users: 0, items: 0 });
    assert.deepEqual(
      outcomes.map(([, o]) => o).sort(),
      ['STORE_UNAVAILABLE', 'STORE_UNAVAILABLE', 'ok', 'ok'].sort(),
    );

    fake.failures.push(
      new FakeApiError(503, 'busy'),
      new FakeApiError(503, 'busy'),
      new FakeApiError(503, 'busy'),
    );
    await assert.rejects(
      store.getUsers(['u']),
      (err) => err instanceof TransientError && err.code === 'STORE_UNAVAILABLE',
    );
    fake.failures.length = 0;

    fake.failures.push(new FakeApiError(403, 'forbidden'));
    outcomes.length = 0;
    await assert.rejects(
      store.getUsers(['u']),
      (err) => err instanceof FatalError && err.code === 'STORE_AUTH',
    );
    assert.deepEqual(outcomes, [['retrieve', 'STORE_AUTH']], 'fatal errors are not retried');
  });

  it('an onRequest callback that throws does not fail the call', async () => {
    const { store } = await readyStore(new FakeQdrant(), storeConfig(), {
      onRequest: () => {
        throw new Error('metrics bug');
      },
    });
    assert.deepEqual(await store.counts(), { users: 0, items: 0 });
  });
});

describe('qdrant error classification', () => {
  const table: [unknown, string, string][] = [
    [{ status: 500, data: { status: { error: 'x' } } }, 'transient', 'STORE_UNAVAILABLE'],
    [{ status: 502 }, 'transient', 'STORE_UNAVAILABLE'],
    [{ status: 503 }, 'transient', 'STORE_UNAVAILABLE'],
    [{ status: 504 }, 'transient', 'STORE_TIMEOUT'],
    [{ status: 408 }, 'transient', 'STORE_TIMEOUT'],
    [{ status: 429 }, 'transient', 'STORE_RATE_LIMITED'],
    [{ status: 401 }, 'fatal', 'STORE_AUTH'],
    [{ status: 403 }, 'fatal', 'STORE_AUTH'],
    [{ status: 404 }, 'fatal', 'STORE_NOT_FOUND'],
    [{ status: 400 }, 'fatal', 'STORE_REQUEST_REJECTED'],
    [{ status: 409 }, 'fatal', 'STORE_REQUEST_REJECTED'],
    [{ status: 422 }, 'fatal', 'STORE_REQUEST_REJECTED'],
    [
      Object.assign(new Error('Unexpected Response: 202 (Accepted)'), {
        name: 'QdrantClientUnexpectedResponseError',
      }),
      'fatal',
      'STORE_UNEXPECTED',
    ],
    [Object.assign(new Error('t'), { name: 'QdrantClientTimeoutError' }), 'transient', 'STORE_TIMEOUT'],
    [
      Object.assign(new Error('r'), { name: 'QdrantClientResourceExhaustedError' }),
      'transient',
      'STORE_RATE_LIMITED',
    ],
    [Object.assign(new Error('bad url'), { name: 'QdrantClientConfigError' }), 'fatal', 'STORE_CONFIG'],
    [
      Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }),
      'transient',
      'STORE_UNAVAILABLE',
    ],
    [
      Object.assign(new TypeError('fetch failed'), { cause: { code: 'UND_ERR_CONNECT_TIMEOUT' } }),
      'transient',
      'STORE_TIMEOUT',
    ],
    [
      Object.assign(new TypeError('fetch failed'), { cause: { errors: [{ code: 'ECONNREFUSED' }] } }),
      'transient',
      'STORE_UNAVAILABLE',
    ],
    [new Error('something else'), 'fatal', 'STORE_UNEXPECTED'],
    ['a string', 'fatal', 'STORE_UNEXPECTED'],
  ];
  for (const [err, family, code] of table) {
    it(`${code} (${family}) from ${err instanceof Error ? err.name + ': ' + err.message : JSON.stringify(err)}`, () => {
      const classified = classifyQdrantError(err, 'op', 'coll');
      assert.equal(classified.family, family);
      assert.equal(classified.code, code);
      assert.equal(classified.cause, err);
    });
  }

  it('keeps errors that are already classified', () => {
    const already = new BadInputError('X', 'y');
    assert.equal(classifyQdrantError(already, 'op', 'c'), already);
  });
});

describe('qdrant errors over HTTP (real client, node:http fake server)', () => {
  type Reply = { readonly status: number; readonly body?: unknown } | 'hang';
  let server: Server;
  let url: string;
  let replies: ((req: IncomingMessage) => Reply)[] = [];
  const seen: IncomingMessage[] = [];

  before(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      req.resume();
      const next = replies.shift() ?? ((): Reply => ({ status: 500 }));
      const reply = next(req);
      if (reply === 'hang') return;
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body ?? { status: { error: `scripted ${reply.status}` }, time: 0 }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const client = (timeout = 2_000, apiKey?: string) =>
    new QdrantClient({ url, timeout, checkCompatibility: false, ...(apiKey ? { apiKey } : {}) });

  async function classified(fn: () => Promise<unknown>): Promise<StarstreamError> {
    try {
      await fn();
    } catch (err) {
      return classifyQdrantError(err, 'getCollection', 'c');
    }
    throw new Error('expected a rejection');
  }

  for (const [status, family, code] of [
    [400, 'fatal', 'STORE_REQUEST_REJECTED'],
    [401, 'fatal', 'STORE_AUTH'],
    [403, 'fatal', 'STORE_AUTH'],
    [404, 'fatal', 'STORE_NOT_FOUND'],
    [429, 'transient', 'STORE_RATE_LIMITED'],
    [500, 'transient', 'STORE_UNAVAILABLE'],
    [503, 'transient', 'STORE_UNAVAILABLE'],
  ] as const) {
    it(`HTTP ${status} → ${family} ${code}, with Qdrant's message`, async () => {
      replies = [() => ({ status })];
      const err = await classified(() => client().getCollection('c'));
      assert.equal(err.family, family);
      assert.equal(err.code, code);
      assert.match(err.message, new RegExp(`HTTP ${status}: scripted ${status}`));
    });
  }

  it('a request that outlives timeoutMs → transient STORE_TIMEOUT', async () => {
    replies = [() => 'hang'];
    const err = await classified(() => client(100).getCollection('c'));
    assert.equal(err.code, 'STORE_TIMEOUT');
    assert.ok(err instanceof TransientError);
  });

  it('connection refused → transient STORE_UNAVAILABLE', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await classified(() =>
      new QdrantClient({ url: `http://127.0.0.1:${port}`, checkCompatibility: false }).getCollection('c'),
    );
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.ok(err instanceof TransientError);
  });

  // The point calls go through PointsRest (no reviver on the answers): the same statuses must classify the same.
  const points = (timeoutMs = 2_000, base = url) => new PointsRest({ url: base, headers: { 'accept-encoding': 'identity' }, timeoutMs });

  for (const [status, code] of [
    [400, 'STORE_REQUEST_REJECTED'],
    [401, 'STORE_AUTH'],
    [404, 'STORE_NOT_FOUND'],
    [429, 'STORE_RATE_LIMITED'],
    [503, 'STORE_UNAVAILABLE'],
  ] as const) {
    it(`point calls: HTTP ${status} → ${code}, with Qdrant's message`, async () => {
      replies = [() => ({ status })];
      const err = await classified(() => points().retrieve('c', { ids: ['a'] }));
      assert.equal(err.code, code);
      assert.match(err.message, new RegExp(`HTTP ${status}: scripted ${status}`));
    });
  }

  it('point calls: a hang past timeoutMs → STORE_TIMEOUT; connection refused → STORE_UNAVAILABLE', async () => {
    replies = [() => 'hang'];
    assert.equal((await classified(() => points(100).scroll('c', {}))).code, 'STORE_TIMEOUT');
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    assert.equal((await classified(() => points(2_000, `http://127.0.0.1:${port}`).count('c', {}))).code, 'STORE_UNAVAILABLE');
  });

  it("point calls: the client's paths, query parameters and defaults; the answer's result, numbers as numbers", async () => {
    const bodies: string[] = [];
    const result = { points: [{ id: 'p', payload: { count: 2 ** 60 } }] };
    replies = [
      (req) => {
        let text = '';
        req.on('data', (chunk: Buffer) => (text += chunk.toString()));
        req.on('end', () => bodies.push(text));
        return { status: 200, body: { result, status: 'ok', time: 0.001 } };
      },
    ];
    seen.length = 0;
    const answer = await points().scroll('items x', { limit: 3, consistency: 'majority', filter: { must: [] } });
    assert.equal(seen[0]!.method, 'POST');
    assert.equal(seen[0]!.url, '/collections/items%20x/points/scroll?consistency=majority');
    assert.equal(seen[0]!.headers['accept-encoding'], 'identity');
    assert.deepEqual(answer, result);
    assert.equal(typeof answer.points[0]!.payload!.count, 'number');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(JSON.parse(bodies[0]!), { limit: 3, with_payload: true, with_vector: false, filter: { must: [] } });

    replies = [() => ({ status: 200, body: { result: { operation_id: 1, status: 'completed' }, status: 'ok', time: 0 } })];
    await points().upsert('c', { points: [] });
    assert.equal(seen[1]!.method, 'PUT');
    assert.equal(seen[1]!.url, '/collections/c/points?wait=true');
  });

  it('the adapter sends the API key, retries a 503 and reports each attempt', async () => {
    const ok = (result: unknown) => () => ({ status: 200, body: { result, status: 'ok', time: 0 } });
    const info = (indexes: Record<string, string>) =>
      ok({
        status: 'green',
        optimizer_status: 'ok',
        segments_count: 1,
        points_count: 0,
        config: { params: { vectors: { size: 4, distance: 'Dot' } } },
        payload_schema: Object.fromEntries(
          Object.entries(indexes).map(([k, t]) => [k, { data_type: t, points: 0 }]),
        ),
      });
    replies = [
      () => ({ status: 503 }),
      ok({ exists: true }),
      info({ id: 'keyword' }),
      ok({ exists: true }),
      info({ id: 'keyword', popularityLongLog: 'float' }),
    ];
    seen.length = 0;
    const outcomes: string[] = [];
    const store = createQdrantStore({
      config: storeConfig({}, { url, apiKey: 'sekret' }),
      onRequest: (op, _s, outcome) => outcomes.push(`${op}:${outcome}`),
    });
    await store.init();
    assert.deepEqual(outcomes, [
      'collectionExists:STORE_UNAVAILABLE',
      'collectionExists:ok',
      'getCollection:ok',
      'collectionExists:ok',
      'getCollection:ok',
    ]);
    assert.equal(seen.length, 5);
    assert.ok(seen.every((req) => req.headers['api-key'] === 'sekret'));
    assert.equal(seen[1]!.url, '/collections/t_users/exists');
    await store.close();
  });

  it('the adapter stops at a 401 without retrying', async () => {
    replies = [() => ({ status: 401 })];
    seen.length = 0;
    const store = createQdrantStore({ config: storeConfig({}, { url }) });
    await assert.rejects(store.init(), (err) => err instanceof FatalError && err.code === 'STORE_AUTH');
    assert.equal(seen.length, 1);
  });
});

// The whole contract over the fake: checks the adapter's mapping, merging and locking end to end. It says
// nothing about Qdrant itself (filters, order_by, float32 scoring): qdrant.test.ts covers that on a real server.
runVectorStoreContract('qdrant adapter over an in-memory fake client', async (opts) => {
  const store = createQdrantStore({
    config: contractStoreConfig(opts, { kind: 'qdrant', retry: FAST_RETRY }),
    client: asApi(new FakeQdrant()),
  });
  return { store, cleanup: async () => {} };
});
