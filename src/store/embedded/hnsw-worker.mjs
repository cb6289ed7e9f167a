// Entry of the HNSW build worker. Node 20 resolves a worker's entry file before any loader applies, so a `.ts`
// entry fails even when the parent runs under `node --import tsx` (execArgv included) or tsx's `register()`
// (bin/starstream.js). This plain module registers tsx in the worker itself, then loads the TypeScript body.
import { register } from 'tsx/esm/api';

register();
await import('./hnsw-worker.ts');
