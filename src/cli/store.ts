import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import { createQdrantStore, type CollectionReport } from '../store/qdrant/index.ts';

/**
 * `starstream store init`: creates what the configured store needs, or checks what exists.
 *
 * - qdrant: creates the `users` and `items` collections and their payload indexes when missing (whatever
 *   `store.qdrant.createCollections` says: this command is how operators create them when the pipeline runs
 *   with it off), then checks vector size and distance; a mismatch is a `FatalError` `STORE_SCHEMA_MISMATCH`.
 * - embedded: nothing to create; the snapshot file appears on the first flush.
 *
 * Errors are thrown as classified (`TransientError` after the retries of `store.retry`, `FatalError`);
 * the CLI maps them to the exit code.
 */

export interface StoreInitReport {
  readonly kind: Config['store']['kind'];
  readonly collections: readonly CollectionReport[];
}

export async function storeInit(config: Readonly<Config>, log: Logger): Promise<StoreInitReport> {
  const storeLog = log.child({ component: 'cli.store' });
  if (config.store.kind === 'embedded') {
    storeLog.info(
      { path: config.store.embedded.path ?? null },
      'embedded store: nothing to create (the snapshot file is written on flush)',
    );
    return { kind: 'embedded', collections: [] };
  }
  const store = createQdrantStore({
    config: { ...config.store, qdrant: { ...config.store.qdrant, createCollections: true } },
    log,
  });
  try {
    const collections = await store.ensureCollections();
    for (const c of collections) {
      storeLog.info(
        { collection: c.name, status: c.status, points: c.points, indexesCreated: c.indexesCreated },
        c.status === 'created' ? 'collection created' : 'collection exists and matches the config',
      );
    }
    return { kind: 'qdrant', collections };
  } finally {
    await store.close();
  }
}
