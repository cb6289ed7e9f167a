/** The Qdrant adapter of the `VectorStore` port; see `adapter.ts` for the layout and the concurrency scheme. */
export {
  createQdrantStore,
  QdrantStore,
  type OnRequest,
  type QdrantApi,
  type QdrantStoreOptions,
  type StoreConfig,
} from './adapter.ts';
export type { CollectionReport } from './collections.ts';
export { classifyQdrantError } from './errors.ts';
export { pointId } from './mapping.ts';
