import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { GraphBuilder, readGraph, type Graph, type GraphParams } from './hnsw-graph.ts';
import type { SyncReply, SyncRequest } from './hnsw-worker.ts';

/**
 * Where an index's graph gets brought up to date with a batch of changed rows:
 * - `WorkerGraphBuilds` (`indexBuild: 'worker'`): in a worker thread, so the event loop never pays for HNSW
 *   inserts; the result comes back as a new graph object that the caller swaps in;
 * - `InlineGraphBuilds` (`indexBuild: 'inline'`): synchronously on the calling thread, on the one graph that is
 *   also searched, so the refresh point is a pure function of the write sequence (tests, replays).
 */
export interface GraphBuilds {
  /** True while the builder holds no graph (new, or reset after a failure): the next sync must send every row. */
  readonly needsFull: boolean;
  /**
   * Inserts or moves `slots[i]` to row `i` of `rows` (into a new, empty graph when `fromScratch`); resolves
   * with the graph to search from now on.
   */
  sync(slots: Int32Array, rows: Float32Array, fromScratch: boolean): Graph | Promise<Graph>;
  /** Forgets the builder's graph after a failure, so the next sync starts from scratch. */
  reset(): void;
  close(): Promise<void>;
}

export class InlineGraphBuilds implements GraphBuilds {
  private builder: GraphBuilder;

  constructor(
    private readonly params: GraphParams,
    private readonly efSearch: number,
  ) {
    this.builder = new GraphBuilder(params);
  }

  get needsFull(): boolean {
    return this.builder.current === null;
  }

  sync(slots: Int32Array, rows: Float32Array, fromScratch: boolean): Graph {
    if (fromScratch) this.reset();
    const graph = this.builder.apply(slots, rows);
    graph.setEf(this.efSearch);
    return graph;
  }

  reset(): void {
    this.builder = new GraphBuilder(this.params);
  }

  async close(): Promise<void> {}
}

interface Pending {
  readonly id: number;
  readonly resolve: (path: string) => void;
  readonly reject: (err: Error) => void;
}

/**
 * One long-lived worker per index holding its own copy of the graph (so a sync applies only what changed),
 * started lazily. The graph travels back through a temporary file: the worker writes it, the main thread reads
 * it on libuv's thread pool (`readIndex`), so neither side blocks the event loop for the copy. The worker is
 * `ref`'d only while a sync is in flight, so an idle index never keeps the process alive.
 */
export class WorkerGraphBuilds implements GraphBuilds {
  private worker: Worker | null = null;
  private hasGraph = false;
  private nextId = 0;
  private pending: Pending | null = null;

  constructor(
    private readonly params: GraphParams,
    private readonly efSearch: number,
  ) {}

  get needsFull(): boolean {
    return !this.hasGraph;
  }

  async sync(slots: Int32Array, rows: Float32Array, fromScratch: boolean): Promise<Graph> {
    if (this.pending) throw new Error('a graph sync is already in flight');
    // A directory per sync, removed as soon as the graph is read back: an index that is never closed (a
    // killed process, a test that forgets) leaves nothing behind unless it dies in the middle of a sync.
    const dir = mkdtempSync(join(tmpdir(), 'starstream-hnsw-'));
    try {
      const path = await this.syncInWorker(slots, rows, fromScratch, join(dir, 'graph.bin'));
      this.hasGraph = true;
      return await readGraph(path, this.params.dimension, this.efSearch);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  reset(): void {
    this.hasGraph = false;
    const worker = this.worker;
    this.worker = null;
    void worker?.terminate();
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.pending?.reject(new Error('index closed'));
    this.pending = null;
    await worker?.terminate();
  }

  private syncInWorker(slots: Int32Array, rows: Float32Array, fromScratch: boolean, path: string): Promise<string> {
    const worker = this.ensureWorker();
    const request: SyncRequest = { id: this.nextId++, slots, rows, fromScratch, path };
    return new Promise<string>((resolve, reject) => {
      this.pending = { id: request.id, resolve, reject };
      worker.ref();
      worker.postMessage(request, [slots.buffer as ArrayBuffer, rows.buffer as ArrayBuffer]);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    // Run from src/, the .mjs entry registers tsx first; compiled (dist/), the worker's own .js loads directly.
    const entry = import.meta.url.endsWith('.ts') ? './hnsw-worker.mjs' : './hnsw-worker.js';
    const worker = new Worker(new URL(entry, import.meta.url), { workerData: this.params });
    worker.on('message', (reply: SyncReply) => this.settle(reply.id, reply.ok ? reply.path : new Error(reply.message)));
    worker.on('error', (err) => this.settle(this.pending?.id ?? -1, err));
    worker.on('exit', (code) => {
      // A worker that `reset` or `close` already replaced says nothing about the current one.
      if (this.worker !== worker) return;
      this.worker = null;
      this.hasGraph = false;
      this.settle(this.pending?.id ?? -1, new Error(`HNSW build worker exited with code ${code}`));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private settle(id: number, result: string | Error): void {
    const pending = this.pending;
    if (!pending || pending.id !== id) return;
    this.pending = null;
    this.worker?.unref();
    if (typeof result === 'string') pending.resolve(result);
    else pending.reject(result);
  }
}
