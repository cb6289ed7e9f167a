/**
 * The outage injectors of `outage.ts` do what the fault tests rely on: the wrapper refuses with exactly the
 * Qdrant adapter's classification and retry budget, and the TCP proxy really cuts a Qdrant client off
 * (checked against a node:http stand-in, so it is proven here even where no Qdrant server runs).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { QdrantClient } from '@qdrant/js-client-rest';
import { loadConfig } from '../../src/config/load.ts';
import { FatalError, TransientError } from '../../src/errors/index.ts';
import { createEmbeddedStore } from '../../src/store/embedded/index.ts';
import { classifyQdrantError } from '../../src/store/qdrant/index.ts';
import { OutageStore, startOutageProxy } from './outage.ts';

const RETRY = { retries: 2, initialDelayMs: 10, maxDelayMs: 50, multiplier: 2, jitter: 0 };

describe('OutageStore', () => {
  it('while down, every call fails as the Qdrant adapter does on ECONNREFUSED, after the retry budget; up again, calls pass', async () => {
    const s = loadConfig({ overrides: { store: { dimension: 4 } } }).store;
    const store = new OutageStore(createEmbeddedStore({ ...s, ...s.embedded, path: undefined }), RETRY);
    await store.init();
    store.down();
    const started = Date.now();
    const err = await store.getUsers(['u1']).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof TransientError, String(err));
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.equal(err.message, 'qdrant retrieve starstream_users: ECONNREFUSED');
    assert.equal(((err.cause as Error).cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.equal(store.refusedAttempts, 3, 'first try + store.retry.retries');
    assert.ok(Date.now() - started >= 30, 'the retry budget was spent');
    store.up();
    assert.deepEqual([...(await store.getUsers(['u1'])).keys()], []);
    assert.equal(store.failedCalls, 1);
    store.down('unauthorized');
    await assert.rejects(store.counts(), (e: unknown) => e instanceof FatalError && e.code === 'STORE_AUTH');
    assert.equal(store.refusedAttempts, 4, 'a fatal error is not retried');
  });
});

describe('startOutageProxy', () => {
  it('forwards a Qdrant client while up; down, the client gets a transient STORE_UNAVAILABLE (also on a kept-alive connection); up, it passes again', async (t) => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ result: { exists: true }, status: 'ok', time: 0 }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const proxy = await startOutageProxy(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    t.after(() => proxy.close());
    const port = Number(new URL(proxy.url).port);
    const client = new QdrantClient({ url: proxy.url, port, checkCompatibility: false, timeout: 2_000 });
    const exists = (): Promise<unknown> =>
      client.collectionExists('c').then(
        (r) => r.exists,
        (e: unknown) => classifyQdrantError(e, 'exists', 'c'),
      );

    assert.equal(await exists(), true);
    await proxy.down();
    const refused = await exists();
    assert.ok(refused instanceof TransientError && refused.code === 'STORE_UNAVAILABLE', String(refused));
    await proxy.up();
    assert.equal(await exists(), true);
    assert.equal(await exists(), true);
    await proxy.down();
    const cut = await exists();
    assert.ok(cut instanceof TransientError, String(cut));
    await proxy.up();
    assert.equal(await exists(), true);
  });
});
