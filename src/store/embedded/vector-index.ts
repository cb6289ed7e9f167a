import type { Neighbour } from '../port.ts';
import { InlineGraphBuilds, WorkerGraphBuilds, type GraphBuilds } from './graph-builds.ts';
import { releaseGraph, type Graph } from './hnsw-graph.ts';
import { GraphRows, SlotSet, VectorSlab } from './vector-slab.ts';

/**
 * Inner-product search over one collection's vectors in which every committed vector is searchable from the
 * write that set it, with recall@50 ≥ 0.95 against exact search. Vectors live in a `VectorSlab` (row = int
 * slot). Search is exact while the collection is smaller than `exactSearchBelow`; above it, an HNSW graph
 * (hnswlib) answers for the vectors it holds, and a flat scan answers for the rest:
 *
 * - `graphRows` keeps each slot's row as the searched graph holds it. A write to a slot in the graph compares
 *   the new vector with that copy: within `reindexDrift` (relative L2 distance ‖v − v_graph‖ / max(‖v_graph‖, ε))
 *   the slot stays in the graph, which finds it through its graph-time position (its neighbourhood is still
 *   valid for a vector that near), and `withinDrift` counts it; beyond the bound it is `markDelete`d there (the
 *   walk still uses it as a stepping stone but never returns it) and joins `dirty`. New slots (not in the graph)
 *   are always dirty; a dirty slot stays so until a refresh takes it.
 * - A search walks the graph for `max(k + |exclude|, efSearch)` hits (the walk visits ef candidates anyway),
 *   scores every hit with the slab's current vector, so a graph-time copy never decides a score or an order,
 *   then scans all of `dirty` exactly (one pass over the rows, `VectorSlab.dots`) and merges.
 * - When `dirty` exceeds `max(rebuildDirtyMin, rebuildDirtyFraction × size)` a refresh brings a graph up to
 *   date (`GraphBuilds`): in a worker thread by default, from a copy of the dirty rows (moved and inserted into
 *   the worker's own graph), or of all rows when moving would cost more than building anew
 *   (`UPDATE_COST_RATIO`). Vectors moved within the bound stay where the graph has them (moving one costs the
 *   worker as much as a drifted one); an explicit `rebuild()` moves them too. The new graph is swapped in on the
 *   event loop in one synchronous step: the shipped rows become its `graphRows`, and the slots written
 *   meanwhile (`sinceSnapshot`) are classified against it, the drifted and new ones forming the new `dirty`.
 *   At most one refresh is in flight; a failed one is reported (`onError`), the builder starts over with the
 *   whole collection after another threshold's worth of writes, and the flat scan keeps every result right
 *   until then.
 * - Determinism: with `indexBuild: 'inline'` refreshes run synchronously at the write that crosses the
 *   threshold, so results are a function of the write sequence alone (tests, replays). In worker mode, which
 *   searches see a new graph depends on timing; `awaitRebuild()` waits for the refresh in flight, and
 *   `rebuild()` refreshes at a point the caller chooses (with thresholds out of reach, the only points).
 *
 * The trade-off: a vector that moved within the bound is found only if its graph-time position is found, so
 * recall can drop by what the drift costs the walk; in exchange, a learning stream (every event touches a
 * user, a positive and 8 negatives, each by a small BPR step) no longer turns everything recently touched into
 * a flat scan. Measured (test/store/vector-index-recall.test.ts, 100k users and items, d=32, 2,000 BPR events
 * unabsorbed after 5,000 absorbed): recall@50 0.961–0.966 at reindexDrift 0.15, 0.3 (default), 0.5 and 1 alike
 * (at 0.3, 1 of the 3,344 moved items and none of the 1,975 moved users crosses the bound), against 0.964–0.978
 * with 0 (every change dirty, all 5,319 scanned exactly). The gap is the graph's own approximation (ef 200)
 * now covering the moved vectors too, not the drift: it does not change from 0.15 to 1. `reindexDrift: 0`
 * restores "every change is searched exactly".
 * On `npm start -- --events 20000` (2 shared cores, a CI run beside it) the flat scan dominated (the item
 * collection stays below `exactSearchBelow` most of the run): 524–589 events/s, p50 64–65 ms, p99 286–419 ms
 * before this scan and drift bound, 787–852 events/s, p50 45–49 ms, p99 192–198 ms after, back to back.
 *
 * Costs (d=32, M=16, efConstruction=64, 2 shared cores): a flat scan ~30 ns per vector (`dots`: float64 query,
 * two rows per pass); an hnswlib insert 0.1–0.35 ms, a move 0.5–1.5 ms; writing and reading the graph file
 * ~0.1 s each at 100k (27 MB). Memory: the slab and `graphRows` (4·d bytes per vector each), the searched
 * graph (~270 bytes per vector at d=32, M=16), and the worker's copy of it.
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
  /**
   * A vector in the graph becomes dirty (marked deleted there, scanned exactly) once its relative L2 distance
   * from its graph-time copy, ‖v − v_graph‖ / max(‖v_graph‖, ε), exceeds this; within it, the graph still finds
   * it by its old position and the search scores it with the current vector. 0 = every change is dirty.
   */
  readonly reindexDrift: number;
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
  /** Slots in the graph whose vector changed since, by no more than `reindexDrift` (found via their old position). */
  readonly withinDrift: number;
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
  /** Each slot's row as the searched graph holds it (valid below `graphSize`). */
  private readonly graphRows: GraphRows;
  /** 1 for a slot below `graphSize`, not dirty, whose vector differs from its graph row (within the bound). */
  private moved = new Uint8Array(1_024);
  private movedCount = 0;
  /** Reused by every search: the query as float64 (scored against float32 rows without a conversion per element). */
  private readonly q64: Float64Array;
  /** Reused by every graph search: the query as hnswlib's plain number array. */
  private readonly qArray: number[];
  /** Reused by the flat scan: the scores of the dirty slots. */
  private scores = new Float64Array(256);
  /** Slots written since the in-flight refresh took its snapshot: the `dirty` set of the graph it brings. */
  private sinceSnapshot = new SlotSet();
  /**
   * Slots released by `remove` and not reused yet: never searchable (marked deleted in the graph, not in
   * `dirty`), marked deleted again in every graph a refresh swaps in, which may hold them live.
   */
  private readonly dead = new Set<number>();
  /** Released slots reused while a refresh was in flight: dirty in whatever graph it brings. */
  private readonly reusedInFlight = new Set<number>();
  private inFlight: Promise<void> | null = null;
  private refreshes = 0;
  private failedRefreshes = 0;
  private lastRefreshMs = 0;
  /** No refresh starts before `dirty` is this large again (set after a failed one). */
  private retryAtDirty = 0;
  private closed = false;

  constructor(private readonly options: VectorIndexOptions) {
    this.slab = new VectorSlab(options.dimension);
    this.graphRows = new GraphRows(options.dimension);
    this.q64 = new Float64Array(options.dimension);
    this.qArray = new Array<number>(options.dimension).fill(0);
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
      withinDrift: this.movedCount,
      refreshes: this.refreshes,
      failedRefreshes: this.failedRefreshes,
      refreshInFlight: this.inFlight !== null,
      lastRefreshMs: this.lastRefreshMs,
    };
  }

  /** Sets the vector of `id`, adding it when new; searchable as of this call. */
  set(id: string, vector: Float32Array): void {
    this.written(this.slab.upsert(id, vector));
  }

  /**
   * Forgets `id` (a retired user): it is never returned again, and its slot is reused by the next new id,
   * which the index then treats as new (dirty until a refresh places it).
   */
  remove(id: string): void {
    const slot = this.slab.release(id);
    if (slot < 0) return;
    // Below graphSize a dirty slot is already marked deleted in the graph (see `classify`).
    if (this.graph && slot < this.graphSize && !this.dirty.has(slot)) markDeleted(this.graph, slot);
    this.dirty.delete(slot);
    this.reusedInFlight.delete(slot);
    this.setMoved(slot, false);
    this.dead.add(slot);
  }

  private written(slot: number): void {
    if (slot < 0) return;
    if (this.dead.delete(slot)) {
      // A released slot taken by a new id: its graph node (if any) is the old id's and is marked deleted.
      this.dirty.add(slot);
      if (this.inFlight) this.reusedInFlight.add(slot);
      else this.maybeRefresh();
      return;
    }
    this.classify(slot);
    if (this.inFlight) this.sinceSnapshot.add(slot);
    else this.maybeRefresh();
  }

  /** `set` from row `offset` of another slab (the typed state's vector column): no view allocated. */
  setRow(id: string, source: Float32Array, offset: number): void {
    this.written(this.slab.upsertRow(id, source, offset));
  }

  search(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Neighbour[] {
    if (k <= 0 || this.slab.size === 0) return [];
    const top = new TopK(k);
    const q = this.query64(query);
    if (this.graph) this.searchGraph(query, q, k, top, exclude);
    this.scanDirty(q, top, exclude);
    return top.sorted((slot) => this.slab.idOf(slot));
  }

  /**
   * Brings the graph up to date with every vector written so far, now, whatever the thresholds, and resolves
   * once it is the one searched. With thresholds set out of reach, this makes the refresh points explicit
   * (deterministic graphs in worker mode too); also useful right after a bulk load or a restore.
   */
  async rebuild(): Promise<void> {
    await this.awaitRebuild();
    if (this.closed || this.slab.size === 0 || (this.graph && this.dirty.size === 0 && this.movedCount === 0)) return;
    this.startRefresh(this.threshold(), true);
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

  /**
   * Walks the graph for `max(k + |exclude|, efSearch)` hits (the walk visits ef candidates anyway, so the wider
   * list is nearly free) and scores each with its current vector: a hit whose vector moved (within the drift
   * bound) since the graph placed it ranks by where it is now, and one that ranked below `k` in graph-time order
   * can still make the top k.
   */
  private searchGraph(query: Float32Array, q: Float64Array, k: number, top: TopK, exclude?: ReadonlySet<string>): void {
    const want = Math.min(Math.max(k + (exclude?.size ?? 0), this.options.hnswEfSearch), this.graphSize);
    if (want <= 0) return;
    const found = this.graph!.searchKnn(this.queryArray(query), want);
    for (const slot of found.neighbors) {
      // Never true while markDelete holds; kept so a stale graph position can never shadow the exact score.
      if (this.dirty.has(slot)) continue;
      const score = this.slab.dot(q, slot);
      if (score <= top.floor) continue;
      if (exclude === undefined || !exclude.has(this.slab.idOf(slot))) top.offer(slot, score);
    }
  }

  /** The exact scan of `dirty`: every score in one pass over the rows, then ids only for those that can enter. */
  private scanDirty(query: Float64Array, top: TopK, exclude?: ReadonlySet<string>): void {
    const n = this.dirty.size;
    if (n === 0) return;
    if (this.scores.length < n) this.scores = new Float64Array(Math.max(n, this.scores.length * 2));
    const scores = this.scores;
    const slots = this.dirty.members();
    this.slab.dots(query, slots, n, scores);
    for (let i = 0; i < n; i++) {
      const score = scores[i]!;
      if (score <= top.floor) continue;
      const slot = slots[i]!;
      if (exclude === undefined || !exclude.has(this.slab.idOf(slot))) top.offer(slot, score);
    }
  }

  /** The query as the plain array hnswlib takes, reused by every search. */
  private queryArray(query: Float32Array): number[] {
    const a = this.qArray;
    for (let d = 0; d < a.length; d++) a[d] = query[d] ?? 0;
    return a;
  }

  private query64(query: Float32Array): Float64Array {
    const q = this.q64;
    for (let d = 0; d < q.length; d++) q[d] = query[d] ?? 0;
    return q;
  }

  /**
   * After `slot`'s vector was written: a slot not in the graph is dirty; one in it becomes dirty (marked
   * deleted there) once it drifted beyond `reindexDrift` from its graph row, and is counted as moved within
   * the bound otherwise. A dirty slot stays dirty until a refresh takes it.
   */
  private classify(slot: number): void {
    if (this.dirty.has(slot) || this.dead.has(slot)) return;
    if (slot >= this.graphSize) {
      this.dirty.add(slot);
      return;
    }
    const drift = this.graphRows.drift(slot, this.slab.row(slot), this.options.reindexDrift);
    if (drift > 0) {
      this.setMoved(slot, false);
      this.dirty.add(slot);
      this.graph!.markDelete(slot);
    } else this.setMoved(slot, drift === 0);
  }

  private setMoved(slot: number, moved: boolean): void {
    if (slot >= this.moved.length) {
      if (!moved) return;
      const grown = new Uint8Array(Math.max(slot + 1, this.moved.length * 2));
      grown.set(this.moved);
      this.moved = grown;
    }
    if ((this.moved[slot] === 1) === moved) return;
    this.moved[slot] = moved ? 1 : 0;
    this.movedCount += moved ? 1 : -1;
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

  /**
   * Sends the dirty rows to the builder (with `withMoved`, also those moved within the drift bound, so that the
   * graph holds every vector exactly as it is now: explicit `rebuild()`s; threshold refreshes leave those where
   * they are, as moving one costs the worker as much as a drifted one).
   */
  private startRefresh(threshold: number, withMoved = false): void {
    const moved = withMoved ? this.movedCount : 0;
    const fromScratch = this.builds.needsFull || (this.movedInGraph() + moved) * UPDATE_COST_RATIO >= this.graphSize;
    const slots = fromScratch ? allSlots(this.slab.size) : withMoved ? this.dirtyAndMoved() : this.dirty.toArray();
    const rows = this.slab.gather(slots);
    // What the new graph will hold for these slots (the originals may be transferred to the worker).
    const shipped: Shipped = { slots: slots.slice(), rows: rows.slice(), fromScratch, snapshotSize: this.slab.size };
    const started = performance.now();
    this.sinceSnapshot.clear();
    try {
      const built = this.builds.sync(slots, rows, fromScratch);
      if (built instanceof Promise) this.inFlight = this.finishRefresh(built, shipped, started, threshold);
      else this.swapIn(built, shipped, started);
    } catch (err) {
      this.refreshFailed(err, threshold);
    }
  }

  private dirtyAndMoved(): Int32Array {
    const out = new Int32Array(this.dirty.size + this.movedCount);
    out.set(this.dirty.members().subarray(0, this.dirty.size));
    let n = this.dirty.size;
    for (let slot = 0; slot < Math.min(this.graphSize, this.moved.length); slot++) if (this.moved[slot]) out[n++] = slot;
    return out;
  }

  /** Dirty slots that have a (stale) position in the graph: a refresh moves them rather than inserting. */
  private movedInGraph(): number {
    let moved = 0;
    for (let i = 0; i < this.dirty.size; i++) if (this.dirty.at(i) < this.graphSize) moved++;
    return moved;
  }

  private async finishRefresh(built: Promise<Graph>, shipped: Shipped, started: number, threshold: number): Promise<void> {
    try {
      const graph = await built;
      if (!this.closed) this.swapIn(graph, shipped, started);
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
   * Makes `graph` (built from the rows as of the snapshot: `shipped` moved or inserted, the other slots below
   * `snapshotSize` where the previous graph had them) the searched one, and records the shipped rows as the
   * graph's. Slots written since the snapshot are classified against the new graph: those beyond the drift
   * bound (and new ones) are marked deleted there and become the new dirty set. Runs in one synchronous step,
   * so no search sees a half-swapped state.
   */
  private swapIn(graph: Graph, shipped: Shipped, started: number): void {
    const stale = this.sinceSnapshot;
    const previous = this.graph;
    this.graph = graph;
    // A worker's graph arrives as a new object; the inline builder hands back the one it keeps updating.
    if (previous && previous !== graph) releaseGraph(previous);
    this.graphSize = shipped.snapshotSize;
    this.graphRows.writeAll(shipped.slots, shipped.rows);
    if (shipped.fromScratch) {
      this.moved.fill(0);
      this.movedCount = 0;
    } else for (let i = 0; i < shipped.slots.length; i++) this.setMoved(shipped.slots[i]!, false);
    this.dirty.clear();
    // The builder's graph may hold released slots live (a full build ships every row).
    for (const slot of this.dead) if (slot < this.graphSize) markDeleted(graph, slot);
    // Released slots reused since the snapshot: new ids, whatever the new graph holds at their labels.
    for (const slot of this.reusedInFlight) {
      if (slot < this.graphSize) markDeleted(graph, slot);
      this.dirty.add(slot);
    }
    this.reusedInFlight.clear();
    for (let i = 0; i < stale.size; i++) this.classify(stale.at(i));
    stale.clear();
    this.retryAtDirty = 0;
    this.refreshes++;
    this.lastRefreshMs = performance.now() - started;
  }
}

/**
 * `graph.markDelete(slot)`, tolerating a label the graph does not hold or has already deleted: a slot released
 * before any refresh shipped it, or marked by an earlier pass.
 */
function markDeleted(graph: Graph, slot: number): void {
  try {
    graph.markDelete(slot);
  } catch {
    // Not in this graph, or already deleted there: either way it cannot be returned.
  }
}

/** The rows a refresh sent to the builder, kept to become the new graph's rows at swap-in. */
interface Shipped {
  readonly slots: Int32Array;
  readonly rows: Float32Array;
  readonly fromScratch: boolean;
  readonly snapshotSize: number;
}

function allSlots(size: number): Int32Array {
  const slots = new Int32Array(size);
  for (let i = 0; i < size; i++) slots[i] = i;
  return slots;
}

/**
 * The best `k` (slot, score) pairs offered, by score descending; equal scores keep the order they came in. A
 * sorted array beats a heap at k ≤ a few hundred.
 */
class TopK {
  private readonly slots: Int32Array;
  private readonly scores: Float64Array;
  private size = 0;
  /** A score must beat this to enter: -Infinity until k are held, then the k-th best. */
  floor = -Infinity;

  constructor(private readonly k: number) {
    this.slots = new Int32Array(k);
    this.scores = new Float64Array(k);
  }

  offer(slot: number, score: number): void {
    if (score <= this.floor) return;
    const { slots, scores } = this;
    let i = this.size < this.k ? this.size++ : this.k - 1;
    while (i > 0 && scores[i - 1]! < score) {
      slots[i] = slots[i - 1]!;
      scores[i] = scores[i - 1]!;
      i--;
    }
    slots[i] = slot;
    scores[i] = score;
    if (this.size === this.k) this.floor = scores[this.k - 1]!;
  }

  /** The held pairs as neighbours, ids read once here (no id is read for a pair pushed out). */
  sorted(idOf: (slot: number) => string): Neighbour[] {
    const out: Neighbour[] = [];
    for (let i = 0; i < this.size; i++) out.push({ id: idOf(this.slots[i]!), score: this.scores[i]! });
    return out;
  }
}
