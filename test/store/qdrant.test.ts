import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { QdrantClient } from '@qdrant/js-client-rest';
import { parseConfig } from '../../src/config/load.ts';
import { FatalError } from '../../src/errors/index.ts';
import { createQdrantStore } from '../../src/store/qdrant/index.ts';
import { uniqueName } from '../helpers.ts';
import { contractStoreConfig, runVectorStoreContract } from './contract.ts';

/**
 * The Qdrant adapter against a real Qdrant: the contract suite plus what only a server can show (schema checks
 * on existing collections, keyword filters, `order_by` on the float index, float32 scoring).
 *
 * Where the server comes from, in order: `QDRANT_URL` (and `QDRANT_API_KEY`) from the environment; else a
 * container (`QDRANT_IMAGE`, default below) started with testcontainers when a Docker engine is reachable;
 * else the suites are skipped with the reason printed. Every store uses a random collection prefix and drops
 * its collections afterwards.
 */

const DEFAULT_IMAGE = 'qdrant/qdrant:v1.13.6';

interface Target {
  readonly url: string;
  readonly apiKey?: string;
}

const target = await resolveQdrant();
const skip = 'skip' in target ? target.skip : false;
const server = 'skip' in target ? null : target;

async function resolveQdrant(): Promise<Target | { skip: string }> {
  const url = process.env['QDRANT_URL'];
  if (url)
    return { url, ...(process.env['QDRANT_API_KEY'] ? { apiKey: process.env['QDRANT_API_KEY'] } : {}) };
  const hints = [
    process.env['DOCKER_HOST'],
    existsSync('/var/run/docker.sock'),
    existsSync(join(homedir(), '.testcontainers.properties')),
  ];
  if (!hints.some(Boolean)) {
    return {
      skip: 'no Qdrant: QDRANT_URL is unset and no Docker engine (DOCKER_HOST unset, no /var/run/docker.sock)',
    };
  }
  try {
    const { GenericContainer, Wait, getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    const container = await new GenericContainer(process.env['QDRANT_IMAGE'] ?? DEFAULT_IMAGE)
      .withExposedPorts(6333)
      .withWaitStrategy(Wait.forHttp('/readyz', 6333).forStatusCode(200))
      .withStartupTimeout(120_000)
      .start();
    after(() => container.stop());
    return { url: `http://${container.getHost()}:${container.getMappedPort(6333)}` };
  } catch (err) {
    return {
      skip: `no Qdrant: QDRANT_URL is unset and the Docker engine could not start one (${(err as Error).message})`,
    };
  }
}

function adminClient(t: Target): QdrantClient {
  return new QdrantClient({
    url: t.url,
    checkCompatibility: false,
    ...(t.apiKey ? { headers: { 'api-key': t.apiKey } } : {}),
  });
}

async function dropCollections(t: Target, prefix: string): Promise<void> {
  const client = adminClient(t);
  for (const name of [`${prefix}users`, `${prefix}items`]) {
    await client.deleteCollection(name).catch(() => undefined);
  }
}

const FAST_RETRY = { retries: 3, initialDelayMs: 50, maxDelayMs: 500, multiplier: 2, jitter: 0.2 };

function qdrantSection(
  t: Target,
  prefix: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { url: t.url, collectionPrefix: prefix, ...(t.apiKey ? { apiKey: t.apiKey } : {}), ...extra };
}

for (const excludeStrategy of ['filter', 'overfetch'] as const) {
  runVectorStoreContract(
    `qdrant (real server, exclude by ${excludeStrategy})`,
    async (opts) => {
      const t = server!;
      const prefix = `${uniqueName('t').replace(/-/g, '_')}_`;
      const store = createQdrantStore({
        config: contractStoreConfig(opts, {
          kind: 'qdrant',
          retry: FAST_RETRY,
          qdrant: qdrantSection(t, prefix, { excludeStrategy }),
        }),
      });
      return { store, cleanup: () => dropCollections(t, prefix) };
    },
    { skip },
  );
}

describe('qdrant adapter on a real server', { skip }, () => {
  const config = (prefix: string, dimension: number, extra: Record<string, unknown> = {}) =>
    parseConfig({
      store: { kind: 'qdrant', dimension, retry: FAST_RETRY, qdrant: qdrantSection(server!, prefix, extra) },
    }).store;

  async function withPrefix(fn: (prefix: string) => Promise<void>): Promise<void> {
    const prefix = `${uniqueName('t').replace(/-/g, '_')}_`;
    try {
      await fn(prefix);
    } finally {
      await dropCollections(server!, prefix);
    }
  }

  it('an existing collection of another dimension is STORE_SCHEMA_MISMATCH naming both', () =>
    withPrefix(async (prefix) => {
      const first = createQdrantStore({ config: config(prefix, 8) });
      await first.init();
      await first.close();
      const second = createQdrantStore({ config: config(prefix, 16) });
      await assert.rejects(second.init(), (err) => {
        assert.ok(err instanceof FatalError);
        assert.equal(err.code, 'STORE_SCHEMA_MISMATCH');
        assert.match(err.message, /vector size 8 .*vector size 16/);
        return true;
      });
    }));

  it('with createCollections false a missing collection is STORE_COLLECTION_MISSING; ops on a dropped one are STORE_NOT_FOUND', () =>
    withPrefix(async (prefix) => {
      await assert.rejects(
        createQdrantStore({ config: config(prefix, 4, { createCollections: false }) }).init(),
        (err) => err instanceof FatalError && err.code === 'STORE_COLLECTION_MISSING',
      );
      const store = createQdrantStore({ config: config(prefix, 4) });
      const reports = await store.ensureCollections();
      assert.deepEqual(
        reports.map((r) => r.status),
        ['created', 'created'],
      );
      await store.init();
      await dropCollections(server!, prefix);
      await assert.rejects(
        store.getItems(['x']),
        (err) => err instanceof FatalError && err.code === 'STORE_NOT_FOUND',
      );
    }));

  it('odd ids round-trip and are excluded by filter; integer-valued popularity logs still order', () =>
    withPrefix(async (prefix) => {
      const store = createQdrantStore({ config: config(prefix, 4) });
      await store.init();
      const ids = ['a.b.c', 'ü/ñ 空', 'x'.repeat(500), '{"json":1}'];
      await store.applyItemDeltas(
        ids.map((itemId, i) => ({
          itemId,
          initialVector: Float32Array.from([i + 1, 0, 0, 0]),
          interactions: i + 1,
          atMs: 0,
        })),
      );
      assert.deepEqual([...(await store.getItems(ids)).keys()].sort(), [...ids].sort());
      const found = await store.searchItems(Float32Array.from([1, 0, 0, 0]), 10, new Set([ids[3]!, ids[0]!]));
      assert.deepEqual(
        found.map((n) => n.id),
        [ids[2], ids[1]],
      );
      // atMs 0 with one interaction makes longLog exactly 0, sent as the JSON integer 0.
      const popular = await store.popularItems(10, 0);
      assert.deepEqual(
        popular.map((n) => n.id),
        [...ids].reverse(),
      );
      await store.close();
    }));
});
