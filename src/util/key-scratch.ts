/**
 * A reusable map from dense int keys (entity slots) to int values, for the hot loops that fold lists of slots
 * (co-occurrence aggregation, neighbour engagement counts, the batch's raised-item marks). Clearing it is O(1):
 * each `begin()` starts a new generation, and an entry counts only when its stamp is the current generation, so
 * nothing is zeroed or allocated per call once the arrays have grown to the key space.
 *
 * One instance per call site, used by one fold at a time (the pipeline is single-threaded and a fold does not
 * await); a fold that needs its entries after the next `begin()` keeps the generation it got and checks it.
 */
export class KeyScratch {
  values = new Int32Array(0);
  stamps = new Uint32Array(0);
  generation = 0;

  /** Starts an empty map over keys `0 .. keySpace - 1`; returns its generation. */
  begin(keySpace: number): number {
    if (this.stamps.length < keySpace) {
      const size = Math.max(keySpace, this.stamps.length * 2);
      this.values = new Int32Array(size);
      this.stamps = new Uint32Array(size);
    }
    // Wraps past 2^32 - 1 to 1, never 0: a fresh array's stamps are 0 and must not count as set.
    this.generation = (this.generation + 1) >>> 0 || 1;
    return this.generation;
  }

  /** The value of `key` in the current generation, or -1. Hot loops write `stamps` and `values` directly. */
  get(key: number): number {
    return key < this.stamps.length && this.stamps[key] === this.generation ? this.values[key]! : -1;
  }
}
