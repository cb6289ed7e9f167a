import { createEmbeddedStore } from '../../src/store/embedded/index.ts';
import { contractStoreConfig, runVectorStoreContract } from './contract.ts';

// The embedded store against the shared VectorStore contract (memory only, config defaults for the index).
runVectorStoreContract('embedded (memory only)', async (opts) => {
  const config = contractStoreConfig(opts);
  const store = createEmbeddedStore({ ...config, ...config.embedded, path: undefined });
  return { store, cleanup: async () => {} };
});
