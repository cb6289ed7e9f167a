/** The production store path on Qdrant: a hot in-process tier written through to Qdrant; see `tiered-store.ts`. */
export { createTieredStore, TieredStore, type TieredStoreOptions } from './tiered-store.ts';
export type { DurableTier, ItemPage } from './durable.ts';
