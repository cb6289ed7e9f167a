import { parentPort, workerData } from 'node:worker_threads';
import { GraphBuilder, type GraphParams } from './hnsw-graph.ts';

/**
 * Body of the HNSW build worker (started through `hnsw-worker.mjs`). It keeps its own copy of the graph, so
 * each sync only applies the rows that changed since the previous one, then writes the whole graph to a file
 * that the main thread reads back into a fresh object (hnswlib has no in-memory hand-over between threads).
 */

/** Main thread → worker. `slots` and `rows` are transferred, not copied. */
export interface SyncRequest {
  readonly id: number;
  readonly slots: Int32Array;
  readonly rows: Float32Array;
  /** Drop the worker's graph and build a new one from these rows (which are then the whole collection). */
  readonly fromScratch: boolean;
  /** Where to write the updated graph. */
  readonly path: string;
}

/** Worker → main thread. */
export type SyncReply =
  | { readonly id: number; readonly ok: true; readonly path: string; readonly buildMs: number }
  | { readonly id: number; readonly ok: false; readonly message: string };

const port = parentPort;
if (!port) throw new Error('hnsw-worker.ts must run in a worker thread');
const params = workerData as GraphParams;
let builder = new GraphBuilder(params);

port.on('message', (request: SyncRequest) => {
  const started = performance.now();
  let reply: SyncReply;
  try {
    if (request.fromScratch) builder = new GraphBuilder(params);
    builder.apply(request.slots, request.rows).writeIndexSync(request.path);
    reply = { id: request.id, ok: true, path: request.path, buildMs: performance.now() - started };
  } catch (err) {
    reply = { id: request.id, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
