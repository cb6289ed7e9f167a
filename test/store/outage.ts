/**
 * Vector-store outages for fault-injection tests (RELIABILITY.md, issue 9), in two forms:
 *
 * - `OutageStore`: a wrapper around any `VectorStore` (the embedded one here) that, while `down()`, refuses
 *   every call with exactly what the Qdrant adapter throws on a refused connection: undici's
 *   `TypeError('fetch failed')` with an `ECONNREFUSED` socket error as cause, classified by the adapter's own
 *   `classifyQdrantError` (`TransientError` `STORE_UNAVAILABLE`), after the same `store.retry` budget the
 *   adapter spends (`withRetry`). `down('unauthorized')` refuses with what a 401 becomes (`FatalError`
 *   `STORE_AUTH`).
 * - `startOutageProxy`: a TCP proxy in front of a real Qdrant (`QDRANT_URL`); `down()` stops listening and cuts
 *   the open connections, so the real adapter sees real `ECONNREFUSED`/socket errors until `up()`.
 *
 * `storeTargets()` lists the stores a test should run against: the wrapped embedded store always, and a real
 * Qdrant through the proxy (`QDRANT_URL` as `npm test` sets it, else one started for the file; where none can
 * be had that target carries the reason it is skipped, and under CI the call fails instead: `qdrant-server.ts`).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { QdrantClient } from '@qdrant/js-client-rest';
import type { Config } from '../../src/config/schema.ts';
import type { StarstreamError } from '../../src/errors/index.ts';
import { createEmbeddedStore, EmbeddedStore } from '../../src/store/embedded/index.ts';
import type { VectorStore } from '../../src/store/port.ts';
import { classifyQdrantError, createQdrantStore } from '../../src/store/qdrant/index.ts';
import { createTieredStore } from '../../src/store/tiered/index.ts';
import { withRetry, type RetryPolicy } from '../../src/util/retry.ts';
import { uniqueName } from '../helpers.ts';
import { qdrantForTests } from './qdrant-server.ts';

/** What the Qdrant adapter makes of a refused TCP connect (the shape undici's fetch rejects with). */
export function connectionRefused(op: string, target: string): StarstreamError {
  const socket = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6333'), {
    code: 'ECONNREFUSED',
    errno: -111,
    syscall: 'connect',
    address: '127.0.0.1',
    port: 6333,
  });
  return classifyQdrantError(new TypeError('fetch failed', { cause: socket }), op, target);
}

/** What the Qdrant adapter makes of a 401 (a rotated API key): fatal. */
export function unauthorized(op: string, target: string): StarstreamError {
  const apiError = Object.assign(new Error('Unauthorized'), {
    status: 401,
    data: { status: { error: 'Invalid api-key' } },
  });
  return classifyQdrantError(apiError, op, target);
}

export type OutageKind = 'refused' | 'unauthorized';

/** One outage as the test saw it. */
export interface OutageWindow {
  readonly kind: OutageKind;
  readonly fromMs: number;
  toMs: number | null;
}

/** Fault control every target offers. */
export interface OutageControl {
  down(kind?: OutageKind): void | Promise<void>;
  up(): void | Promise<void>;
}

export class OutageStore implements VectorStore, OutageControl {
  readonly kind: VectorStore['kind'];
  private current: OutageWindow | null = null;
  readonly windows: OutageWindow[] = [];
  /** Attempts refused (each retry of a call counts). */
  refusedAttempts = 0;
  /** Calls that ran out of the retry budget (or were fatal): what the caller saw fail. */
  failedCalls = 0;
  /** Calls that succeeded after at least one refused attempt (the outage ended within their budget). */
  recoveredCalls = 0;

  constructor(
    private readonly inner: VectorStore,
    private readonly retry: RetryPolicy,
    private readonly collections = { users: 'starstream_users', items: 'starstream_items' },
  ) {
    this.kind = inner.kind;
  }

  get isDown(): boolean {
    return this.current !== null;
  }

  down(kind: OutageKind = 'refused'): void {
    if (this.current) return;
    this.current = { kind, fromMs: Date.now(), toMs: null };
    this.windows.push(this.current);
  }

  up(): void {
    if (!this.current) return;
    this.current.toMs = Date.now();
    this.current = null;
  }

  init(): Promise<void> {
    return this.call('getCollections', this.collections.users, () => this.inner.init());
  }
  getUsers(ids: readonly string[]) {
    return this.call('retrieve', this.collections.users, () => this.inner.getUsers(ids));
  }
  getItems(ids: readonly string[]) {
    return this.call('retrieve', this.collections.items, () => this.inner.getItems(ids));
  }
  putUsers(users: Parameters<VectorStore['putUsers']>[0]) {
    return this.call('upsert', this.collections.users, () => this.inner.putUsers(users));
  }
  applyItemDeltas(deltas: Parameters<VectorStore['applyItemDeltas']>[0]) {
    return this.call('retrieve', this.collections.items, () => this.inner.applyItemDeltas(deltas));
  }
  putItemMetadata(items: Parameters<VectorStore['putItemMetadata']>[0]) {
    return this.call('batchUpdate', this.collections.items, () => this.inner.putItemMetadata(items));
  }
  searchItems(query: Float32Array, k: number, exclude?: ReadonlySet<string>) {
    return this.call('query', this.collections.items, () => this.inner.searchItems(query, k, exclude));
  }
  searchUsers(query: Float32Array, k: number, exclude?: ReadonlySet<string>) {
    return this.call('query', this.collections.users, () => this.inner.searchUsers(query, k, exclude));
  }
  popularItems(k: number, nowMs: number) {
    return this.call('scroll', this.collections.items, () => this.inner.popularItems(k, nowMs));
  }
  counts() {
    return this.call('count', this.collections.users, () => this.inner.counts());
  }
  /** No request: the adapter's flush only waits for calls in flight. */
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  private async call<T>(op: string, target: string, fn: () => Promise<T>): Promise<T> {
    let refused = false;
    try {
      const result = await withRetry(async () => {
        const outage = this.current;
        if (outage) {
          this.refusedAttempts++;
          refused = true;
          throw outage.kind === 'refused' ? connectionRefused(op, target) : unauthorized(op, target);
        }
        return fn();
      }, this.retry);
      if (refused) this.recoveredCalls++;
      return result;
    } catch (err) {
      this.failedCalls++;
      throw err;
    }
  }
}

/** A TCP proxy whose `down()` makes the upstream unreachable (refused connects, cut connections). */
export interface OutageProxy extends OutageControl {
  readonly url: string;
  close(): Promise<void>;
}

export async function startOutageProxy(upstreamUrl: string): Promise<OutageProxy> {
  const upstream = new URL(upstreamUrl);
  const upstreamPort = Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80));
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const remote = connect(upstreamPort, upstream.hostname);
    for (const s of [client, remote]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        remote.destroy();
      });
    }
    client.pipe(remote).pipe(client);
  });
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  const port = await listen(0);
  let listening = true;
  const stopListening = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  return {
    url: `${upstream.protocol}//127.0.0.1:${port}`,
    down: stopListening,
    up: async () => {
      if (listening) return;
      await listen(port);
      listening = true;
    },
    close: stopListening,
  };
}

/** A store to run a fault test against, with its outage switch. */
export interface StoreTarget {
  readonly name: string;
  /** Set when this target cannot run here; the test is skipped with it. */
  readonly skip: string | false;
  open(config: Readonly<Config>): Promise<{
    readonly store: VectorStore;
    readonly control: OutageControl;
    /** Refused attempts and failed calls, where the target can count them. */
    readonly stats: () => string;
    readonly cleanup: () => Promise<void>;
  }>;
}

/**
 * The wrapped embedded store (always), and a real Qdrant behind an outage proxy (see the top of this file).
 * The embedded store's retry budget is `config.store.retry`, as the Qdrant adapter's is. Call it at the top
 * level of a test file: a server it starts is stopped after the file.
 */
export async function storeTargets(): Promise<StoreTarget[]> {
  const qdrant = await qdrantForTests();
  return [
    {
      name: 'embedded store behind a connection-refusing wrapper',
      skip: false,
      open: async (config) => {
        const s = config.store;
        const store = new OutageStore(createEmbeddedStore({ ...s, ...s.embedded, path: undefined }), s.retry);
        return {
          store,
          control: store,
          stats: () =>
            `${store.refusedAttempts} refused attempts, ${store.failedCalls} calls failed after the retry budget, ${store.recoveredCalls} recovered within it`,
          cleanup: () => store.close(),
        };
      },
    },
    qdrantTarget('Qdrant adapter behind a TCP proxy that is shut', qdrant, false),
    qdrantTarget('tiered store (the store.kind=qdrant path) over Qdrant behind a TCP proxy that is shut', qdrant, true),
  ];
}

/** A real Qdrant behind an outage proxy: the adapter alone, or the tiered store over it (the production path). */
function qdrantTarget(name: string, qdrant: Awaited<ReturnType<typeof qdrantForTests>>, tiered: boolean): StoreTarget {
  const qdrantUrl = 'skip' in qdrant ? undefined : qdrant.url;
  const apiKey = 'skip' in qdrant ? undefined : qdrant.apiKey;
  return {
    name,
    skip: 'skip' in qdrant ? `${qdrant.skip} (the embedded target covers the pipeline)` : false,
    open: async (config) => {
      const proxy = await startOutageProxy(qdrantUrl!);
      const prefix = `${uniqueName('outage').replace(/-/g, '_')}_`;
      const adapter = createQdrantStore({
        config: {
          ...config.store,
          kind: 'qdrant',
          qdrant: {
            ...config.store.qdrant,
            url: proxy.url,
            collectionPrefix: prefix,
            ...(apiKey ? { apiKey } : {}),
          },
        },
      });
      // The production path wraps the adapter in the hot tier (`buildStore` for store.kind=qdrant).
      const store = tiered ? tieredOver(adapter, config.store) : adapter;
      const admin = new QdrantClient({
        url: qdrantUrl!,
        checkCompatibility: false,
        ...(apiKey ? { headers: { 'api-key': apiKey } } : {}),
      });
      return {
        store,
        control: {
          down: (kind = 'refused') => {
            if (kind !== 'refused') throw new Error('the proxy can only refuse connections');
            return proxy.down();
          },
          up: () => proxy.up(),
        },
        stats: () => `${name} (attempts not counted)`,
        cleanup: async () => {
          await store.close();
          await proxy.close();
          for (const collection of [`${prefix}users`, `${prefix}items`])
            await admin.deleteCollection(collection).catch(() => undefined);
        },
      };
    },
  };
}

function tieredOver(adapter: ReturnType<typeof createQdrantStore>, store: Config['store']): VectorStore {
  const hot = new EmbeddedStore({ ...store, ...store.embedded, path: undefined });
  return createTieredStore({ durable: adapter, hot, limits: store, cacheTtlMs: store.qdrant.cacheTtlMs, pageSize: store.qdrant.maxBatchPoints });
}
