import type { Neighbour } from '../port.ts';
import { InlineGraphBuilds, WorkerGraphBuilds, type GraphBuilds } from './graph-builds.ts';
import type { Graph } from './hnsw-graph.ts';
import { SlotSet, VectorSlab } from './vector-slab.ts';

/**
 * Inner-product search over one collection's vectors that is right for every vector from the write that set
 * it. Vectors live in a `VectorSlab` (row = int slot). Search is exact while the collection is smaller than
 * `exactSearchBelow`; above it, an HNSW graph (hnswlib) answers for the vectors it holds, and a flat scan
 * answers for the rest:
 *
 * - `dirty` holds every slot whose vector is not in the graph as it is now: new since the graph's snapshot, or
 *   changed since (those are `markDelete`d in the graph, so the walk still uses them as stepping stones but
 *   never returns their stale position). A search walks the graph for `k + |exclude|` hits, scores them with
 *   the slab's (current) vectors, then scans all of `dirty` exactly and merges. Every search, in full.
 * - When `dirty` exceeds `max(rebuildDirtyMin, rebuildDirtyFraction × size)` a refresh brings a graph up to
 *   date (`GraphBuilds`): in a worker thread by default, from a copy of the dirty rows (moved and inserted into
 *   the worker's own graph), or of all rows when moving would cost more than building anew
 *   (`UPDATE_COST_RATIO`). The new graph is swapped in on the event loop in one synchronous step together with
 *   the slots written meanwhile (`sinceSnapshot`), which become the new `dirty`. At most one refresh is in
 *   flight; a failed one is reported (`onError`), the builder starts over with the whole collection after
 *   another threshold's worth of writes, and the flat scan keeps every result right until then.
 * - Determinism: with `indexBuild: 'inline'` refreshes run synchronously at the write that crosses the
 *   threshold, so results are a function of the write sequence alone (tests, replays). In worker mode, which
 *   searches see a new graph depends on timing; `awaitRebuild()` waits for the refresh in flight, and
 *   `rebuild()` refreshes at a point the caller chooses (with thresholds out of reach, the only points).
 *
 * The trade-off: the graph only saves work for vectors that stayed put since its snapshot. Under a write rate
 * above what the worker can absorb (~1–3k moved vectors/s at 100k on this project's loaded 2-core machine),
 * `dirty` grows towards everything recently touched and search cost towards a full flat scan (~5–15 ms at
 * 100k, d=32): slower, never wrong.
 *
 * Costs (d=32, M=16, efConstruction=64, 2 shared cores): a flat scan ~50–150 ns per vector; an hnswlib insert
 * 0.1–0.35 ms, a move 0.5–1.5 ms; writing and reading the graph file ~0.1 s each at 100k (27 MB).
 * Memory: the slab (4·d bytes per vector), the searched graph (~270 bytes per vector at d=32, M=16), and the
 * worker's copy of it.
 */

export interface VectorIndexOptions {
  readonly dimension: number;
  readonly exactSearchBelow: number;
  readonly hnswM: number;
  readonly hnswEfConstruction: number;
  readonly hnswEfSearch: number;
  /** Refresh the graph once this fraction of the collection is dirty… */
  readonly rebuildDirtyFraction: number;
  /** …and at least this many vectors are. */
  readonly rebuildDirtyMin: number;
  readonly indexBuild: 'worker' | 'inline';
  /** Told about a failed refresh; the index keeps serving exactly. */
  readonly onError?: (err: unknown) => void;
}

/** Counters for tests, benchmarks and metrics. */
export interface VectorIndexStats {
  readonly size: number;
  /** Slots the searched graph was built from (0 = exact search only). */
  readonly graphSize: number;
  readonly dirty: number;
  readonly refreshes: number;
  readonly failedRefreshes: number;
  readonly refreshInFlight: boolean;
  /** Wall time of the last successful refresh, from snapshot to swap, ms. */
  readonly lastRefreshMs: number;
}

const GRAPH_SEED = 42;
/**
 * Moving a point in hnswlib (`updatePoint`, which repairs its neighbours' links) costs 1.5–4.5× inserting one
 * (measured at 100k, d=32, M=16: 0.5–1.5 ms vs 0.35 ms on a loaded 2-core machine), so once this many times
 * the moved points reach the graph's size, building a new graph from all rows is cheaper than moving them.
 */
const UPDATE_COST_RATIO = 3;

export class VectorIndex {
  private readonly slab: VectorSlab;
  private readonly builds: GraphBuilds;
  private graph: Graph | null = null;
  /** Slots below this are in `graph` (those in `dirty` with a stale position, marked deleted). */
  private graphSize = 0;
  private dirty = new SlotSet();
  /** Slots written since the in-flight refresh took its snapshot: the `dirty` set of the graph it brings. */
  private sinceSnapshot = new SlotSet();
  private inFlight: Promise<void> | null = null;
  private refreshes = 0;
  private failedRefreshes = 0;
  private lastRefreshMs = 0;
  /** No refresh starts before `dirty` is this large again (set after a failed one). */
  private retryAtDirty = 0;
  private closed = false;

  constructor(private readonly options: VectorIndexOptions) {
    this.slab = new VectorSlab(options.dimension);
    this.builds = this.createBuilds();
  }

  /** Where refreshes run; a seam for tests that need a builder that fails. */
  protected createBuilds(): GraphBuilds {
    const o = this.options;
    const params = { dimension: o.dimension, m: o.hnswM, efConstruction: o.hnswEfConstruction, seed: GRAPH_SEED };
    return o.indexBuild === 'inline' ? new InlineGraphBuilds(params, o.hnswEfSearch) : new WorkerGraphBuilds(params, o.hnswEfSearch);
  }

  get size(): number {
    return this.slab.size;
  }

  stats(): VectorIndexStats {
    return {
      size: this.slab.size,
      graphSize: this.graphSize,
      dirty: this.dirty.size,
      refreshes: this.refreshes,
      failedRefreshes: this.failedRefreshes,
      refreshInFlight: this.inFlight !== null,
      lastRefreshMs: this.lastRefreshMs,
    };
  }

  /** Sets the vector of `id`, adding it when new; searchable as of this call. */
  set(id: string, vector: Float32Array): void {
    const slot = this.slab.upsert(id, vector);
    if (slot < 0) return;
    if (this.dirty.add(slot) && slot < this.graphSize) this.graph!.markDelete(slot);
    if (this.inFlight) this.sinceSnapshot.add(slot);
    else this.maybeRefresh();
  }

  search(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Neighbour[] {
    if (k <= 0 || this.slab.size === 0) return [];
    const top = new TopK(k);
    if (this.graph) this.searchGraph(query, k, top, exclude);
    for (let i = 0; i < this.dirty.size; i++) this.offer(top, query, this.dirty.at(i), exclude);
    return top.sorted();
  }

  /**
   * Brings the graph up to date with every vector written so far, now, whatever the thresholds, and resolves
   * once it is the one searched. With thresholds set out of reach, this makes the refresh points explicit
   * (deterministic graphs in worker mode too); also useful right after a bulk load or a restore.
   */
  async rebuild(): Promise<void> {
    await this.awaitRebuild();
    if (this.closed || this.slab.size === 0 || (this.graph && this.dirty.size === 0)) return;
    this.startRefresh(this.threshold());
    await this.awaitRebuild();
  }

  /** Resolves when no refresh is in flight (at once for `indexBuild: 'inline'`). */
  async awaitRebuild(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.builds.close();
    await this.inFlight;
  }

  private searchGraph(query: Float32Array, k: number, top: TopK, exclude?: ReadonlySet<string>): void {
    const want = Math.min(k + (exclude?.size ?? 0), this.graphSize);
    if (want <= 0) return;
    const found = this.graph!.searchKnn(Array.from(query), want);
    for (const slot of found.neighbors) {
      // Never true while markDelete holds; kept so a stale graph position can never shadow the exact score.
      if (this.dirty.has(slot)) continue;
      this.offer(top, query, slot, exclude);
    }
  }

  /** Scores `slot` with its current vector, so a graph's stale copy never decides a score. */
  private offer(top: TopK, query: Float32Array, slot: number, exclude?: ReadonlySet<string>): void {
    const score = this.slab.dot(query, slot);
    if (!top.accepts(score)) return;
    const id = this.slab.idOf(slot);
    if (!exclude?.has(id)) top.offer(id, score);
  }

  private maybeRefresh(): void {
    if (this.closed || this.slab.size < this.options.exactSearchBelow) return;
    const threshold = this.threshold();
    if (this.graph && this.dirty.size < threshold) return;
    // After a failure, wait for another threshold's worth of writes (counted, not timed) before retrying.
    if (this.dirty.size < this.retryAtDirty) return;
    this.startRefresh(threshold);
  }

  private threshold(): number {
    const o = this.options;
    return Math.max(o.rebuildDirtyMin, o.rebuildDirtyFraction * this.slab.size);
  }

  private startRefresh(threshold: number): void {
    const fromScratch = this.builds.needsFull || this.movedInGraph() * UPDATE_COST_RATIO >= this.graphSize;
    const slots = fromScratch ? allSlots(this.slab.size) : this.dirty.toArray();
    const rows = this.slab.gather(slots);
    const snapshotSize = this.slab.size;
    const started = performance.now();
    this.sinceSnapshot.clear();
    try {
      const built = this.builds.sync(slots, rows, fromScratch);
      if (built instanceof Promise) this.inFlight = this.finishRefresh(built, snapshotSize, started, threshold);
      else this.swapIn(built, snapshotSize, started);
    } catch (err) {
      this.refreshFailed(err, threshold);
    }
  }

  /** Dirty slots that have a (stale) position in the graph: a refresh moves them rather than inserting. */
  private movedInGraph(): number {
    let moved = 0;
    for (let i = 0; i < this.dirty.size; i++) if (this.dirty.at(i) < this.graphSize) moved++;
    return moved;
  }

  private async finishRefresh(built: Promise<Graph>, snapshotSize: number, started: number, threshold: number): Promise<void> {
    try {
      const graph = await built;
      if (!this.closed) this.swapIn(graph, snapshotSize, started);
    } catch (err) {
      this.refreshFailed(err, threshold);
    } finally {
      this.inFlight = null;
    }
    // Writes made while the refresh ran may already call for the next one.
    this.maybeRefresh();
  }

  private refreshFailed(err: unknown, threshold: number): void {
    this.failedRefreshes++;
    this.builds.reset();
    this.retryAtDirty = this.dirty.size + threshold;
    if (!this.closed) this.options.onError?.(err);
  }

  /**
   * Makes `graph` (built from the rows as of the snapshot, `snapshotSize` slots) the searched one. Slots written
   * since the snapshot are stale in it: they are marked deleted there and become the new dirty set. Runs in one
   * synchronous step, so no search sees a half-swapped state.
   */
  private swapIn(graph: Graph, snapshotSize: number, started: number): void {
    const stale = this.sinceSnapshot;
    for (let i = 0; i < stale.size; i++) {
      const slot = stale.at(i);
      if (slot < snapshotSize) graph.markDelete(slot);
    }
    this.sinceSnapshot = this.dirty;
    this.sinceSnapshot.clear();
    this.dirty = stale;
    this.graph = graph;
    this.graphSize = snapshotSize;
    this.retryAtDirty = 0;
    this.refreshes++;
    this.lastRefreshMs = performance.now() - started;
  }
}

function allSlots(size: number): Int32Array {
  const slots = new Int32Array(size);
  for (let i = 0; i < size; i++) slots[i] = i;
  return slots;
}

/** Keeps the k best (id, score) pairs seen; a sorted array beats a heap at k ≤ a few hundred. */
class TopK {
  private readonly items: Neighbour[] = [];

  constructor(private readonly k: number) {}

  accepts(score: number): boolean {
    return this.items.length < this.k || score > this.items[this.items.length - 1]!.score;
  }

  offer(id: string, score: number): void {
    if (!this.accepts(score)) return;
    if (this.items.length === this.k) this.items.pop();
    let i = this.items.length;
    while (i > 0 && this.items[i - 1]!.score < score) i--;
    this.items.splice(i, 0, { id, score });
  }

  sorted(): Neighbour[] {
    return this.items;
  }
}
