import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import type { Config } from '../../config/schema.ts';
import { BadInputError, errorCode, errorMessage, FatalError } from '../../errors/index.ts';
import { silentLogger, type Logger } from '../../logging/logger.ts';
import { withRetry } from '../../util/retry.ts';
import { applyItemMetadata, mergeItemDelta, validateItemDelta, validateVector } from '../item-merge.ts';
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
import type { DurableTier, ItemPage, ItemVector } from '../tiered/durable.ts';
import { ensureCollection, type CallFn, type CollectionReport, type CollectionSpec } from './collections.ts';
import { classifyQdrantError } from './errors.ts';
import { PointsRest } from './points-rest.ts';
import { KeyedLock } from '../../util/keyed-lock.ts';
import {
  ID_KEY,
  OUTBOX_KEY,
  itemToPoint,
  payloadId,
  pointId,
  pointToItem,
  pointToUser,
  POPULARITY_KEY,
  userToPoint,
  type PointStruct,
} from './mapping.ts';

/**
 * The `VectorStore` port on Qdrant (REST, `@qdrant/js-client-rest`).
 *
 * Layout: two collections, `${collectionPrefix}users` and `${collectionPrefix}items`, one unnamed vector of
 * `store.dimension` with distance `Dot`, payload as described in `mapping.ts`. `init()` creates or checks them.
 *
 * ## Item writes and concurrency
 *
 * Qdrant has no atomic increments or compare-and-set that this code can rely on (conditional upserts need
 * 1.16+ and report nothing about skipped points), so an item write is a read-modify-write: retrieve the
 * current points, fold the deltas in with `mergeItemDelta`, upsert the resulting points (`wait: true`, so the
 * next read sees them). Two writers doing that to the same item at once lose one of the updates. The scheme:
 *
 * 1. All deltas of one `applyItemDeltas` call for the same item are coalesced into a single read and a single
 *    write, folded in the order given (`item-merge.ts`: the co-occurrence cut is the one rule that depends on it).
 * 2. Inside one process, calls are serialized per item (`KeyedLock`): a call waits for earlier calls that share
 *    an item, so concurrent calls (the contract's 50 parallel calls on one item) lose nothing.
 * 3. Across processes there must be ONE writer per item. The pipeline guarantees it with
 *    `store.itemWrites = routed`, routing item deltas through the item-keyed topic `topics.itemDeltas`: Kafka
 *    gives each partition, hence each item, to a single consumer of the group (`src/stages/item-deltas/`).
 *    This adapter does not detect a second writer; with two (`direct` and several instances), updates are lost.
 *
 * The write is the item's full new state, never an increment, so a retried upsert (a timeout after Qdrant had
 * applied it) writes the same state again: retries of one call are idempotent. A whole call that fails and is
 * redelivered (at-least-once) applies its deltas again; counts can then over-count by that batch.
 *
 * `putItemMetadata` takes the same per-item lock, changes existing items with `set_payload` (title and
 * categories only, so it never rewrites counts or vectors) and creates missing ones as unseen items.
 *
 * Every method has the same shape: check state, validate input (`BadInputError`), call the client through
 * `call` (instrumented per attempt, errors classified by `classifyQdrantError`, transient ones retried with the
 * `store.retry` policy).
 */

export type StoreConfig = Config['store'];

/** The client methods the adapter calls; a `QdrantClient` has them, tests pass a scripted fake. */
export type QdrantApi = Pick<
  QdrantClient,
  | 'collectionExists'
  | 'getCollection'
  | 'createCollection'
  | 'createPayloadIndex'
  | 'retrieve'
  | 'upsert'
  | 'batchUpdate'
  | 'query'
  | 'scroll'
  | 'count'
>;

/**
 * Called once per HTTP attempt (retries included): `op` is the client method (`retrieve`, `upsert`, …),
 * `outcome` is `ok` or the error code (`STORE_UNAVAILABLE`, …). Low-cardinality, made for histogram labels.
 */
export type OnRequest = (op: string, seconds: number, outcome: string) => void;

export interface QdrantStoreOptions {
  /** The validated `store` config section (`store.qdrant` for the connection, the rest for limits). */
  readonly config: StoreConfig;
  readonly log?: Logger;
  readonly onRequest?: OnRequest;
  /** A client to use instead of one built from `config.qdrant` (tests). */
  readonly client?: QdrantApi;
}

type State = 'created' | 'ready' | 'closed';

export function createQdrantStore(options: QdrantStoreOptions): QdrantStore {
  return new QdrantStore(options);
}

export class QdrantStore implements VectorStore, DurableTier {
  readonly kind = 'qdrant' as const;
  readonly usersCollection: string;
  readonly itemsCollection: string;

  private readonly config: StoreConfig;
  private readonly api: QdrantApi;
  private readonly log: Logger;
  private readonly onRequest: OnRequest | undefined;
  private readonly itemLock = new KeyedLock();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly closing = new AbortController();
  private state: State = 'created';
  private requests = 0;

  constructor(options: QdrantStoreOptions) {
    this.config = options.config;
    this.log = (options.log ?? silentLogger()).child({ component: 'store.qdrant' });
    this.onRequest = options.onRequest;
    const q = this.config.qdrant;
    this.usersCollection = `${q.collectionPrefix}users`;
    this.itemsCollection = `${q.collectionPrefix}items`;
    this.api = options.client ?? createClient(this.config, this.log);
  }

  /** Creates missing collections and payload indexes (unless `createCollections` is false) and checks them. */
  async ensureCollections(): Promise<CollectionReport[]> {
    this.checkNotClosed('init');
    const q = this.config.qdrant;
    const options = {
      create: q.createCollections,
      hnswM: q.hnswM,
      hnswEfConstruction: q.hnswEfConstruction,
      shardNumber: q.shardNumber,
      replicationFactor: q.replicationFactor,
    };
    const specs: CollectionSpec[] = [
      {
        name: this.usersCollection,
        dimension: this.config.dimension,
        indexes: [{ field: ID_KEY, type: 'keyword' }],
      },
      {
        name: this.itemsCollection,
        dimension: this.config.dimension,
        indexes: [
          { field: ID_KEY, type: 'keyword' },
          { field: POPULARITY_KEY, type: 'float' },
        ],
      },
    ];
    const reports: CollectionReport[] = [];
    for (const spec of specs) reports.push(await ensureCollection(this.api, this.call, spec, options));
    return reports;
  }

  async init(): Promise<void> {
    const reports = await this.track(this.ensureCollections());
    for (const r of reports) {
      this.log.info(
        { collection: r.name, status: r.status, points: r.points, indexesCreated: r.indexesCreated },
        'collection ready',
      );
    }
    if (this.state === 'created') this.state = 'ready';
  }

  async getUsers(userIds: readonly string[]): Promise<Map<string, UserProfile>> {
    this.checkReady('getUsers');
    return this.track(
      // The outbox is read only when a redelivery needs it (`readOutboxes`): every other read leaves its bytes.
      this.fetch(this.usersCollection, userIds, true, (p) => pointToUser(p, this.config.dimension), { exclude: [OUTBOX_KEY] }),
    );
  }

  async readOutboxes(userIds: readonly string[]): Promise<Map<string, string>> {
    this.checkReady('readOutboxes');
    const read = await this.track(
      this.fetch(this.usersCollection, userIds, false, (p) => p.payload?.[OUTBOX_KEY], [ID_KEY, OUTBOX_KEY]),
    );
    const out = new Map<string, string>();
    for (const [id, outbox] of read) if (typeof outbox === 'string') out.set(id, outbox);
    return out;
  }

  async getItems(itemIds: readonly string[]): Promise<Map<string, ItemProfile>> {
    this.checkReady('getItems');
    return this.track(
      this.fetch(this.itemsCollection, itemIds, true, (p) => pointToItem(p, this.config.dimension)),
    );
  }

  async putUsers(users: readonly UserProfile[]): Promise<void> {
    this.checkReady('putUsers');
    const latest = new Map<string, UserProfile>();
    for (const user of users) {
      validateVector(user.vector, this.config.dimension, `user ${JSON.stringify(user.userId)} vector`);
      latest.set(user.userId, user);
    }
    const points = [...latest.values()].map((u) => userToPoint(u, this.config.userHistoryLength));
    await this.track(this.upsert(this.usersCollection, points));
  }

  async applyItemDeltas(deltas: readonly ItemDelta[]): Promise<void> {
    this.checkReady('applyItemDeltas');
    const byItem = new Map<string, ItemDelta[]>();
    for (const delta of deltas) {
      validateItemDelta(delta, this.config.dimension);
      const list = byItem.get(delta.itemId);
      if (list) list.push(delta);
      else byItem.set(delta.itemId, [delta]);
    }
    if (byItem.size === 0) return;
    await this.track(
      this.itemLock.run(byItem.keys(), async () => {
        const current = await this.fetch(this.itemsCollection, [...byItem.keys()], true, (p) =>
          pointToItem(p, this.config.dimension),
        );
        const points: PointStruct[] = [];
        for (const [itemId, list] of byItem) {
          let profile = current.get(itemId);
          for (const delta of list) profile = mergeItemDelta(profile, delta, this.config);
          points.push(itemToPoint(profile!));
        }
        await this.upsert(this.itemsCollection, points);
      }),
    );
  }

  /**
   * Writes whole item states as given, without reading or merging: for a caller that is the single writer of
   * these items and holds their current state (`store/tiered/`). One `batchUpdate` request (`wait: true`) for the
   * whole call, its points in `upsert` operations of `maxBatchPoints`, and `vectors` (items of which only the
   * vector moved: a sampled negative, which is not a sighting) in `update_vectors` operations, payload untouched.
   */
  async putItems(items: readonly ItemProfile[], vectors: readonly ItemVector[] = []): Promise<void> {
    this.checkReady('putItems');
    for (const item of items) validateVector(item.vector, this.config.dimension, `item ${JSON.stringify(item.itemId)} vector`);
    for (const v of vectors) validateVector(v.vector, this.config.dimension, `item ${JSON.stringify(v.itemId)} vector`);
    if (items.length === 0 && vectors.length === 0) return;
    const size = this.config.qdrant.maxBatchPoints;
    const operations = [
      ...chunks(items.map(itemToPoint), size).map((points) => ({ upsert: { points } })),
      ...chunks(vectors.map((v) => ({ id: pointId(v.itemId), vector: Array.from(v.vector) })), size).map((points) => ({ update_vectors: { points } })),
    ];
    await this.track(
      this.call('batchUpdate', this.itemsCollection, () =>
        this.api.batchUpdate(this.itemsCollection, { wait: true, operations }),
      ),
    );
  }

  /** One page of every item, vectors and payloads, in point-id order (a preload; not for the hot path). */
  async scrollItems(limit: number, offset: string | number | null): Promise<ItemPage> {
    this.checkReady('scrollItems');
    checkK(limit);
    const page = await this.track(
      this.call('scroll', this.itemsCollection, () =>
        this.api.scroll(this.itemsCollection, {
          limit,
          ...(offset !== null ? { offset } : {}),
          with_payload: true,
          with_vector: true,
        }),
      ),
    );
    const next = page.next_page_offset;
    return {
      items: page.points.map((p) => pointToItem(p, this.config.dimension)),
      next: typeof next === 'string' || typeof next === 'number' ? next : null,
    };
  }

  /** HTTP requests sent since creation, one per attempt (retries count). */
  roundTrips(): number {
    return this.requests;
  }

  async putItemMetadata(items: readonly ItemMetadata[]): Promise<void> {
    this.checkReady('putItemMetadata');
    const latest = new Map<string, ItemMetadata>();
    for (const item of items) latest.set(item.itemId, item);
    if (latest.size === 0) return;
    await this.track(
      this.itemLock.run(latest.keys(), async () => {
        const present = await this.fetch(this.itemsCollection, [...latest.keys()], false, payloadId);
        const operations: Schemas['UpdateOperation'][] = [];
        const created: PointStruct[] = [];
        for (const [itemId, meta] of latest) {
          if (present.has(itemId)) {
            operations.push({
              set_payload: {
                payload: { title: meta.title, categories: [...meta.categories] },
                points: [pointId(itemId)],
              },
            });
          } else {
            created.push(itemToPoint(applyItemMetadata(undefined, meta, this.config.dimension)));
          }
        }
        const batch = this.config.qdrant.maxBatchPoints;
        operations.unshift(...chunks(created, batch).map((points) => ({ upsert: { points } })));
        for (const chunk of chunks(operations, batch)) {
          await this.call('batchUpdate', this.itemsCollection, () =>
            this.api.batchUpdate(this.itemsCollection, { wait: true, operations: chunk }),
          );
        }
      }),
    );
  }

  async searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    this.checkReady('searchItems');
    return this.track(this.search(this.itemsCollection, query, k, exclude));
  }

  async searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Promise<Neighbour[]> {
    this.checkReady('searchUsers');
    return this.track(this.search(this.usersCollection, query, k, exclude));
  }

  async popularItems(k: number, nowMs: number): Promise<Neighbour[]> {
    this.checkReady('popularItems');
    checkK(k);
    if (!Number.isFinite(nowMs))
      throw new BadInputError('STORE_INVALID_ARGUMENT', `nowMs ${nowMs} is not finite`);
    if (k === 0) return [];
    // longLog = log Σ exp(tᵢ/τ) orders items the same at every read time, so Qdrant can order by it directly.
    const result = await this.track(
      this.call('scroll', this.itemsCollection, () =>
        this.api.scroll(this.itemsCollection, {
          limit: k,
          order_by: { key: POPULARITY_KEY, direction: 'desc' },
          with_payload: [ID_KEY, POPULARITY_KEY],
          with_vector: false,
        }),
      ),
    );
    const halfLife = this.config.popularityLongHalfLifeMs;
    return result.points.map((p) => {
      const longLog = (p.payload ?? {})[POPULARITY_KEY];
      return {
        id: payloadId(p),
        score: typeof longLog === 'number' ? decayedCount(longLog, nowMs, halfLife) : 0,
      };
    });
  }

  async counts(): Promise<StoreCounts> {
    this.checkReady('counts');
    const count = (collection: string) =>
      this.call('count', collection, () => this.api.count(collection, { exact: true })).then((r) => r.count);
    const [users, items] = await this.track(
      Promise.all([count(this.usersCollection), count(this.itemsCollection)]),
    );
    return { users, items };
  }

  /** Every acknowledged write is already in Qdrant's WAL (`wait: true`); waits for writes still in flight. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** Idempotent: refuses new calls, stops retry back-offs, waits for calls in flight. */
  async close(): Promise<void> {
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.closing.abort();
    }
    await Promise.allSettled([...this.inFlight]);
  }

  /** One client call: instrumented per attempt, classified, retried while transient. Arrow: passed around. */
  private readonly call: CallFn = (op, target, fn) =>
    withRetry(
      async () => {
        this.requests++;
        const started = performance.now();
        try {
          const result = await fn();
          this.instrument(op, started, 'ok');
          return result;
        } catch (err) {
          const classified = classifyQdrantError(err, op, target);
          this.instrument(op, started, classified.code);
          throw classified;
        }
      },
      this.config.retry,
      {
        signal: this.closing.signal,
        onRetry: (err, attempt, delayMs) =>
          this.log.warn(
            { op, collection: target, code: errorCode(err), attempt, delayMs, err: errorMessage(err) },
            'qdrant call failed, retrying',
          ),
      },
    );

  private instrument(op: string, started: number, outcome: string): void {
    if (!this.onRequest) return;
    try {
      this.onRequest(op, (performance.now() - started) / 1000, outcome);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'onRequest callback threw');
    }
  }

  /** Retrieves points by original id, in requests of `maxBatchPoints`; missing ids are absent from the map. */
  private async fetch<T>(
    collection: string,
    ids: readonly string[],
    withVector: boolean,
    decode: (point: Schemas['Record']) => T,
    payload: true | string[] | { exclude: string[] } = withVector ? true : [ID_KEY],
  ): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    for (const chunk of chunks([...new Set(ids)], this.config.qdrant.maxBatchPoints)) {
      const points = await this.call('retrieve', collection, () =>
        this.api.retrieve(collection, {
          ids: chunk.map(pointId),
          with_payload: payload,
          with_vector: withVector,
        }),
      );
      for (const point of points) out.set(payloadId(point), decode(point));
    }
    return out;
  }

  private async upsert(collection: string, points: readonly PointStruct[]): Promise<void> {
    for (const chunk of chunks(points, this.config.qdrant.maxBatchPoints)) {
      await this.call('upsert', collection, () => this.api.upsert(collection, { wait: true, points: chunk }));
    }
  }

  private async search(
    collection: string,
    query: Float32Array,
    k: number,
    exclude: ReadonlySet<string> | undefined,
  ): Promise<Neighbour[]> {
    checkK(k);
    validateVector(query, this.config.dimension, 'query');
    if (k === 0) return [];
    const excluded = exclude && exclude.size > 0 ? exclude : undefined;
    const byFilter = this.config.qdrant.excludeStrategy === 'filter';
    const result = await this.call('query', collection, () =>
      this.api.query(collection, {
        query: Array.from(query),
        limit: byFilter || !excluded ? k : k + excluded.size,
        filter:
          byFilter && excluded ? { must_not: [{ key: ID_KEY, match: { any: [...excluded] } }] } : undefined,
        params: { hnsw_ef: this.config.qdrant.hnswEfSearch },
        with_payload: [ID_KEY],
        with_vector: false,
      }),
    );
    const neighbours: Neighbour[] = [];
    for (const point of result.points) {
      const id = payloadId(point);
      if (excluded?.has(id)) continue;
      neighbours.push({ id, score: point.score });
      if (neighbours.length === k) break;
    }
    return neighbours;
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const forget = () => this.inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  private checkNotClosed(op: string): void {
    if (this.state === 'closed') throw new FatalError('STORE_CLOSED', `qdrant store: ${op} after close()`);
  }

  private checkReady(op: string): void {
    this.checkNotClosed(op);
    if (this.state !== 'ready')
      throw new FatalError('STORE_NOT_INITIALIZED', `qdrant store: ${op} before init()`);
  }
}

/**
 * The REST client for `store.qdrant`: the collection calls through `QdrantClient`, the point calls (every
 * batch's reads and writes) through {@link PointsRest}, which parses answers without the client's reviver.
 * The API key travels as the `api-key` header (what the client's `apiKey` option does, minus its
 * `console.warn`; we log the same warning through pino). A URL without a port means the scheme's port
 * (80/443), as URLs do; the client alone would silently use 6333.
 */
function createClient(config: StoreConfig, log: Logger): QdrantApi {
  const q = config.qdrant;
  try {
    const url = new URL(q.url);
    if (q.apiKey !== undefined && url.protocol === 'http:') {
      log.warn({ url: url.origin }, 'qdrant API key sent over plain http; use an https URL');
    }
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    const headers = {
      // Without this, fetch asks for gzip and Qdrant answers gzip-chunked: headers and body go out as
      // separate writes, and the body waits for the client's delayed ACK (~40 ms) on every call. Loopback and
      // datacenter links gain nothing from compressing small JSON, so identity costs no bandwidth worth having.
      'accept-encoding': 'identity',
      ...(q.apiKey !== undefined ? { 'api-key': q.apiKey } : {}),
    };
    const client = new QdrantClient({
      url: q.url,
      port,
      headers,
      timeout: q.timeoutMs,
      // The client's own version check only prints to the console; init() checks what matters.
      checkCompatibility: false,
    });
    const base = `${url.protocol}//${url.hostname}:${port}${url.pathname === '/' ? '' : url.pathname}`;
    const points = new PointsRest({ url: base, headers, timeoutMs: q.timeoutMs });
    return {
      collectionExists: (name) => client.collectionExists(name),
      getCollection: (name) => client.getCollection(name),
      createCollection: (name, args) => client.createCollection(name, args),
      createPayloadIndex: (name, args) => client.createPayloadIndex(name, args),
      retrieve: points.retrieve,
      upsert: points.upsert,
      batchUpdate: points.batchUpdate,
      query: points.query,
      scroll: points.scroll,
      count: points.count,
    };
  } catch (err) {
    throw classifyQdrantError(err, 'connect', q.url);
  }
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 0)
    throw new BadInputError('STORE_INVALID_ARGUMENT', `k ${k} is not an integer >= 0`);
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
