import hnswlib from 'hnswlib-node';
import type { Neighbour } from '../port.ts';

/**
 * Inner-product search over one collection's vectors, exact while the collection is small and HNSW
 * (hnswlib) once it reaches `exactSearchBelow` vectors. Measured on this project's 2-core machine at d=32:
 * exact search costs ~50 ns per vector (2.5 ms per query at 50k vectors), HNSW (M=16, ef=64) answers top-100
 * in ~0.13 ms at 50k, but re-inserting one changed vector costs ~0.5–1 ms. At 5k vectors exact search
 * (~0.25 ms) is as fast as HNSW with its upkeep, and exact; above it HNSW wins quickly.
 *
 * Vectors change on every interaction, while re-inserting a point into HNSW costs ~0.5–1 ms. So the graph is
 * refreshed lazily: a changed vector is marked dirty and re-inserted later, a few per search
 * (`reindexBudgetPerSearch`), oldest first. A search walks the graph with possibly stale positions and then
 * re-scores what it found with the current vectors, so returned scores are always exact; what staleness can
 * cost is recall for items that moved a lot and were not re-inserted yet.
 */

export interface VectorIndexOptions {
  readonly dimension: number;
  readonly exactSearchBelow: number;
  readonly hnswM: number;
  readonly hnswEfConstruction: number;
  readonly hnswEfSearch: number;
  readonly reindexBudgetPerSearch: number;
}

const INITIAL_CAPACITY = 1_024;

export class VectorIndex {
  private readonly ids: string[] = [];
  private readonly labels = new Map<string, number>();
  private matrix: Float32Array;
  private hnsw: hnswlib.HierarchicalNSW | null = null;
  /** Labels not in the graph yet: unfindable until inserted, so they go first. */
  private readonly unindexed = new Set<number>();
  /** Labels whose vector changed since it was inserted. */
  private readonly moved = new Set<number>();
  /** Re-insertions earned by searches and not spent yet (the budget may be fractional). */
  private reindexCredit = 0;

  constructor(private readonly options: VectorIndexOptions) {
    this.matrix = new Float32Array(INITIAL_CAPACITY * options.dimension);
  }

  get size(): number {
    return this.ids.length;
  }

  /** Sets the vector of `id`, adding it when new. */
  set(id: string, vector: Float32Array): void {
    const dim = this.options.dimension;
    let label = this.labels.get(id);
    if (label === undefined) {
      label = this.ids.length;
      this.ids.push(id);
      this.labels.set(id, label);
      this.ensureCapacity(label + 1);
    }
    const isNew = label === this.ids.length - 1 && !this.moved.has(label);
    this.matrix.set(vector.subarray(0, dim), label * dim);
    if (this.hnsw) {
      if (isNew && label >= this.hnswCount) this.unindexed.add(label);
      else if (!this.unindexed.has(label)) this.moved.add(label);
    } else if (this.ids.length >= this.options.exactSearchBelow) this.buildHnsw();
  }

  search(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Neighbour[] {
    if (k <= 0 || this.ids.length === 0) return [];
    if (!this.hnsw) return this.exactSearch(query, k, exclude);
    this.reindex(this.options.reindexBudgetPerSearch);
    const want = Math.min(this.ids.length, k + (exclude?.size ?? 0));
    const found = this.hnsw.searchKnn(Array.from(query), want);
    const top = new TopK(k);
    for (const label of found.neighbors) {
      const id = this.ids[label]!;
      if (exclude?.has(id)) continue;
      top.offer(id, this.dot(query, label));
    }
    return top.sorted();
  }

  private exactSearch(query: Float32Array, k: number, exclude?: ReadonlySet<string>): Neighbour[] {
    const top = new TopK(k);
    for (let label = 0; label < this.ids.length; label++) {
      const score = this.dot(query, label);
      if (!top.accepts(score)) continue;
      const id = this.ids[label]!;
      if (!exclude?.has(id)) top.offer(id, score);
    }
    return top.sorted();
  }

  private dot(query: Float32Array, label: number): number {
    const dim = this.options.dimension;
    const m = this.matrix;
    let s = 0;
    for (let d = 0, o = label * dim; d < dim; d++, o++) s += m[o]! * query[d]!;
    return s;
  }

  private vectorOf(label: number): number[] {
    const dim = this.options.dimension;
    return Array.from(this.matrix.subarray(label * dim, (label + 1) * dim));
  }

  /** Labels below this were in the graph when it was built or have been inserted since. */
  private hnswCount = 0;

  private buildHnsw(): void {
    const o = this.options;
    const index = new hnswlib.HierarchicalNSW('ip', o.dimension);
    index.initIndex(Math.max(INITIAL_CAPACITY, this.ids.length * 2), o.hnswM, o.hnswEfConstruction, 42, false);
    index.setEf(o.hnswEfSearch);
    for (let label = 0; label < this.ids.length; label++) index.addPoint(this.vectorOf(label), label);
    this.hnsw = index;
    this.hnswCount = this.ids.length;
  }

  /**
   * Spends the re-insertion budget: new labels first (they cannot be found at all until inserted), then
   * moved ones, oldest change first. The budget accrues per search and may be fractional, e.g. 0.25 = one
   * re-insertion every fourth search.
   */
  private reindex(budget: number): void {
    const index = this.hnsw!;
    this.reindexCredit = Math.min(this.reindexCredit + budget, 64);
    for (const queue of [this.unindexed, this.moved]) {
      for (const label of queue) {
        if (this.reindexCredit < 1) return;
        this.reindexCredit -= 1;
        queue.delete(label);
        if (label >= index.getMaxElements()) index.resizeIndex(Math.max(label + 1, index.getMaxElements() * 2));
        index.addPoint(this.vectorOf(label), label);
        this.hnswCount = Math.max(this.hnswCount, label + 1);
      }
    }
  }

  private ensureCapacity(rows: number): void {
    const dim = this.options.dimension;
    if (rows * dim <= this.matrix.length) return;
    const grown = new Float32Array(Math.max(rows, (this.matrix.length / dim) * 2) * dim);
    grown.set(this.matrix);
    this.matrix = grown;
  }
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
    let i = this.items.length;
    if (i === this.k) this.items.pop();
    i = this.items.length;
    while (i > 0 && this.items[i - 1]!.score < score) i--;
    this.items.splice(i, 0, { id, score });
  }

  sorted(): Neighbour[] {
    return this.items;
  }
}
