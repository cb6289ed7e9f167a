import hnswlib from 'hnswlib-node';

/** What fixes an HNSW graph's shape; the same params and the same apply sequence build the same graph. */
export interface GraphParams {
  readonly dimension: number;
  readonly m: number;
  readonly efConstruction: number;
  readonly seed: number;
}

export type Graph = hnswlib.HierarchicalNSW;

const MIN_CAPACITY = 1_024;

/**
 * Owns one HNSW graph (inner product, labels = slab slots) and brings it up to date with a batch of rows.
 * Used in the build worker and, for `indexBuild: 'inline'`, on the main thread. Updates are incremental: an
 * existing label is moved with hnswlib's `updatePoint` (which also clears a `markDelete`), a new one is
 * inserted, so a refresh costs time in proportion to what changed, not to the collection.
 */
export class GraphBuilder {
  private graph: Graph | null = null;

  constructor(private readonly params: GraphParams) {}

  get current(): Graph | null {
    return this.graph;
  }

  /** Inserts or moves each `slots[i]` to row `i` of `rows` (packed, `dimension` floats per row). */
  apply(slots: Int32Array, rows: Float32Array): Graph {
    const dim = this.params.dimension;
    const graph = this.withRoomFor(slots.length);
    for (let i = 0; i < slots.length; i++) {
      graph.addPoint(Array.from(rows.subarray(i * dim, (i + 1) * dim)), slots[i]!);
    }
    return graph;
  }

  private withRoomFor(added: number): Graph {
    const p = this.params;
    let graph = this.graph;
    if (!graph) {
      graph = new hnswlib.HierarchicalNSW('ip', p.dimension);
      graph.initIndex(Math.max(MIN_CAPACITY, added * 2), p.m, p.efConstruction, p.seed, false);
      this.graph = graph;
    }
    // Updates of existing labels need no room, so this can over-reserve; growth is geometric either way.
    const needed = graph.getCurrentCount() + added;
    if (needed > graph.getMaxElements()) graph.resizeIndex(Math.max(needed, graph.getMaxElements() * 2));
    return graph;
  }
}

/** A fresh graph object read from a file `writeIndex` wrote; the read runs on libuv's thread pool. */
export async function readGraph(path: string, dimension: number, efSearch: number): Promise<Graph> {
  const graph = new hnswlib.HierarchicalNSW('ip', dimension);
  await graph.readIndex(path);
  graph.setEf(efSearch);
  return graph;
}

/**
 * Frees the native memory of a graph no longer searched (one replaced by a refresh). Its JS wrapper lives on
 * until V8 collects it, and V8 does not see the graph's size, so without this every refresh's graph stayed
 * allocated for a while (about 0.7 GB of RSS at 1M events). `initIndex` replaces the index with an empty one.
 */
export function releaseGraph(graph: Graph): void {
  graph.initIndex(1, 2, 2, 0, false);
}
