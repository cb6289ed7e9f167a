import type { QdrantClient, Schemas } from '@qdrant/js-client-rest';
import { FatalError, StarstreamError } from '../../errors/index.ts';

/**
 * Collection bootstrap: create what is missing, check what exists. Idempotent, and safe when several instances
 * start at once (a lost creation race is followed by the same check as an existing collection).
 *
 * The port's search is an inner product, so vectors use distance `Dot` (Qdrant normalizes only for `Cosine`).
 * An existing collection with another size or distance is a `FatalError` `STORE_SCHEMA_MISMATCH` that names
 * both values: changing either needs a new collection (or prefix), never a silent reinterpretation.
 */

export type PayloadIndexType = 'keyword' | 'float';

export interface CollectionSpec {
  readonly name: string;
  readonly dimension: number;
  readonly indexes: readonly { readonly field: string; readonly type: PayloadIndexType }[];
}

export interface CollectionCreateOptions {
  /** false: a missing collection is a `FatalError` `STORE_COLLECTION_MISSING`. */
  readonly create: boolean;
  readonly hnswM: number;
  readonly hnswEfConstruction: number;
  readonly shardNumber: number;
  readonly replicationFactor: number;
}

export interface CollectionReport {
  readonly name: string;
  readonly status: 'created' | 'exists';
  readonly points: number;
  readonly indexesCreated: readonly string[];
}

/** The client methods bootstrap needs (the real `QdrantClient` has them; tests pass a fake). */
export type CollectionsApi = Pick<
  QdrantClient,
  'collectionExists' | 'getCollection' | 'createCollection' | 'createPayloadIndex'
>;

/** Runs one client call with retry, error classification and instrumentation (the adapter's `call`). */
export type CallFn = <T>(op: string, target: string, fn: () => Promise<T>) => Promise<T>;

export const DISTANCE = 'Dot' as const;

export async function ensureCollection(
  api: CollectionsApi,
  call: CallFn,
  spec: CollectionSpec,
  options: CollectionCreateOptions,
): Promise<CollectionReport> {
  let status: CollectionReport['status'] = 'exists';
  const { exists } = await call('collectionExists', spec.name, () => api.collectionExists(spec.name));
  if (!exists) {
    if (!options.create) {
      throw new FatalError(
        'STORE_COLLECTION_MISSING',
        `qdrant collection ${spec.name} does not exist; run \`starstream store init\` or set store.qdrant.createCollections`,
      );
    }
    status = await create(api, call, spec, options);
  }

  const info = await call('getCollection', spec.name, () => api.getCollection(spec.name));
  checkVectors(spec, info);

  const indexesCreated: string[] = [];
  for (const index of spec.indexes) {
    const present = info.payload_schema[index.field];
    if (present) {
      if (present.data_type !== index.type) {
        throw new FatalError(
          'STORE_SCHEMA_MISMATCH',
          `qdrant collection ${spec.name}: payload index on ${index.field} has type ${present.data_type}, starstream needs ${index.type}`,
        );
      }
      continue;
    }
    await call('createPayloadIndex', spec.name, () =>
      api.createPayloadIndex(spec.name, { field_name: index.field, field_schema: index.type, wait: true }),
    );
    indexesCreated.push(index.field);
  }
  return { name: spec.name, status, points: info.points_count ?? 0, indexesCreated };
}

async function create(
  api: CollectionsApi,
  call: CallFn,
  spec: CollectionSpec,
  options: CollectionCreateOptions,
): Promise<'created' | 'exists'> {
  try {
    await call('createCollection', spec.name, () =>
      api.createCollection(spec.name, {
        vectors: { size: spec.dimension, distance: DISTANCE },
        hnsw_config: { m: options.hnswM, ef_construct: options.hnswEfConstruction },
        shard_number: options.shardNumber,
        replication_factor: options.replicationFactor,
      }),
    );
    return 'created';
  } catch (err) {
    // Another instance may have created it between our check and our create (409, or 400 on older servers).
    if (!(err instanceof StarstreamError) || err.code !== 'STORE_REQUEST_REJECTED') throw err;
    const { exists } = await call('collectionExists', spec.name, () => api.collectionExists(spec.name));
    if (!exists) throw err;
    return 'exists';
  }
}

function checkVectors(spec: CollectionSpec, info: Schemas['CollectionInfo']): void {
  const vectors = info.config.params.vectors;
  const single =
    vectors && typeof (vectors as { size?: unknown }).size === 'number'
      ? (vectors as Schemas['VectorParams'])
      : null;
  const has = single
    ? `vector size ${single.size} and distance ${single.distance}`
    : 'named vectors (or none), not one unnamed vector';
  if (!single || single.size !== spec.dimension || single.distance !== DISTANCE) {
    throw new FatalError(
      'STORE_SCHEMA_MISMATCH',
      `qdrant collection ${spec.name} has ${has}; the config wants vector size ${spec.dimension} (store.dimension) and distance ${DISTANCE}`,
    );
  }
}
