import { grown } from './ids.ts';

/**
 * Per item, the bounded list of items seen in the same users' recent histories with their counts, kept in
 * typed arrays (one `Int32Array` of item slots and one `Float32Array` of counts per item, grown by doubling):
 * no object per entry, no `Map` per item.
 *
 * Bound: an item keeps at most `limit` entries between cuts. New keys are appended until the list holds
 * `limit + limit/4`; then it is cut back to the `limit` largest counts (ties: the lower-ranked id leaves, the
 * order `compare` gives) by one quickselect pass, O(list) amortised over the `limit/4` insertions that filled
 * it, never a sort on the hot path. This is the heavy-hitters policy of the store contract (`item-merge.ts`):
 * an entry that fell out and comes back starts again from its new count, so readers see up to 1.25 × limit
 * entries and every count they see is exact for the time it has been kept.
 *
 * Lookup of a key within an item's list is a linear scan over at most 1.25 × limit int32s (cache-friendly; at
 * the default 200 that is ~250 compares, well under the cost of hashing a string key).
 */
export class CooccurrenceLists {
  private keys: Int32Array[] = [];
  private counts: Float32Array[] = [];
  private lengths = new Int32Array(0);
  /** Bytes held by the per-item arrays (capacity, not just entries in use). */
  private bytes = 0;

  constructor(
    private readonly limit: number,
    /** Orders two keys with equal counts: negative when `a` stays before `b` (the smaller id). */
    private readonly compare: (a: number, b: number) => number,
  ) {}

  get heldBytes(): number {
    return this.bytes + this.lengths.byteLength;
  }

  length(item: number): number {
    return item < this.lengths.length ? this.lengths[item]! : 0;
  }

  keyAt(item: number, k: number): number {
    return this.keys[item]![k]!;
  }

  countAt(item: number, k: number): number {
    return this.counts[item]![k]!;
  }

  /** The item's keys, live and possibly longer than its list: read the first `length(item)` at once. */
  keysOf(item: number): Int32Array {
    return this.keys[item] ?? EMPTY_KEYS;
  }

  /** The item's counts, as `keysOf`. */
  countsOf(item: number): Float32Array {
    return this.counts[item] ?? EMPTY_COUNTS;
  }

  /** The count of `other` in `item`'s list, or 0. */
  countOf(item: number, other: number): number {
    const k = this.indexOf(item, other);
    return k >= 0 ? this.counts[item]![k]! : 0;
  }

  /**
   * Adds `count` to `item`'s entry for `other`, appending it when absent, cutting the list when it overflows
   * (`beforeCut` sees the list with the new entry appended, before the cut: an undo journal keeps it). Returns
   * what it did: `ADD_NONE`, `ADD_INCREMENTED`, `ADD_APPENDED` or `ADD_CUT`.
   */
  add(item: number, other: number, count: number, beforeCut?: (item: number) => void): number {
    if (item === other || !(count > 0)) return ADD_NONE;
    this.ensure(item);
    const n = this.lengths[item]!;
    const k = this.indexOf(item, other);
    if (k >= 0) {
      this.counts[item]![k]! += count;
      return ADD_INCREMENTED;
    }
    this.append(item, other, count);
    if (n + 1 <= this.limit + Math.floor(this.limit / 4)) return ADD_APPENDED;
    beforeCut?.(item);
    this.cut(item);
    return ADD_CUT;
  }

  /** Takes `count` back from `item`'s entry for `other` (an undo of `add`). */
  subtract(item: number, other: number, count: number): void {
    const k = this.indexOf(item, other);
    if (k >= 0) this.counts[item]![k]! -= count;
  }

  /** Drops `item`'s entry for `other` (an undo of the `add` that appended it); order is not kept. */
  remove(item: number, other: number): void {
    const k = this.indexOf(item, other);
    if (k < 0) return;
    const last = this.lengths[item]! - 1;
    this.keys[item]![k] = this.keys[item]![last]!;
    this.counts[item]![k] = this.counts[item]![last]!;
    this.lengths[item] = last;
  }

  private indexOf(item: number, other: number): number {
    const n = this.length(item);
    const keys = this.keys[item];
    for (let k = 0; k < n; k++) if (keys![k] === other) return k;
    return -1;
  }

  /**
   * Replaces `item`'s list with `entries` (a profile loaded from another store), cut only when it holds more
   * than a list may between cuts: a list as `add` leaves it comes back unchanged, so an item that went to
   * another tier and back goes on as one that never left.
   */
  set(item: number, entries: Iterable<readonly [number, number]>): void {
    this.ensure(item);
    this.lengths[item] = 0;
    for (const [other, count] of entries) if (other !== item && count > 0) this.append(item, other, count);
    if (this.lengths[item]! > this.limit + Math.floor(this.limit / 4)) this.cut(item);
  }

  clear(item: number): void {
    if (item < this.lengths.length) this.lengths[item] = 0;
  }

  /** Copies `item`'s list out (for an undo journal); `restore` puts it back. */
  save(item: number): { keys: Int32Array; counts: Float32Array } {
    const n = this.length(item);
    return n === 0
      ? { keys: EMPTY_KEYS, counts: EMPTY_COUNTS }
      : { keys: this.keys[item]!.slice(0, n), counts: this.counts[item]!.slice(0, n) };
  }

  restore(item: number, saved: { keys: Int32Array; counts: Float32Array }): void {
    this.ensure(item);
    this.lengths[item] = 0;
    for (let k = 0; k < saved.keys.length; k++) this.append(item, saved.keys[k]!, saved.counts[k]!);
  }

  // ---- snapshots (state/snapshot.ts) ----

  /**
   * Every list as three flat copies: per item slot below `extent` its length, then all keys and all counts
   * concatenated in slot order, each list in its stored order (so a restore cuts and ties exactly as here).
   */
  exportLists(extent: number): { readonly lengths: Int32Array; readonly keys: Int32Array; readonly counts: Float32Array } {
    const lengths = new Int32Array(extent);
    let total = 0;
    for (let i = 0; i < extent; i++) total += lengths[i] = this.length(i);
    const keys = new Int32Array(total);
    const counts = new Float32Array(total);
    let at = 0;
    for (let i = 0; i < extent; i++) {
      const n = lengths[i]!;
      if (n === 0) continue;
      keys.set(this.keys[i]!.subarray(0, n), at);
      counts.set(this.counts[i]!.subarray(0, n), at);
      at += n;
    }
    return { lengths, keys, counts };
  }

  /** Replaces every list with exported ones (`exportLists`); each item's arrays are sized to its list. */
  importLists(lengths: Int32Array, keys: Int32Array, counts: Float32Array): void {
    this.keys = [];
    this.counts = [];
    this.lengths = grown(new Int32Array(0), lengths.length);
    this.bytes = 0;
    let at = 0;
    for (let i = 0; i < lengths.length; i++) {
      const n = lengths[i]!;
      this.lengths[i] = n;
      if (n === 0) {
        this.keys[i] = EMPTY_KEYS;
        this.counts[i] = EMPTY_COUNTS;
        continue;
      }
      this.keys[i] = keys.slice(at, at + n);
      this.counts[i] = counts.slice(at, at + n);
      this.bytes += n * 8;
      at += n;
    }
  }

  private ensure(item: number): void {
    if (item >= this.lengths.length) this.lengths = grown(this.lengths, item + 1);
    if (!this.keys[item]) {
      for (let i = this.keys.length; i <= item; i++) {
        this.keys[i] ??= EMPTY_KEYS;
        this.counts[i] ??= EMPTY_COUNTS;
      }
    }
  }

  private append(item: number, other: number, count: number): void {
    const n = this.lengths[item]!;
    let keys = this.keys[item]!;
    if (n === keys.length) {
      const size = Math.min(Math.max(8, keys.length * 2), this.limit + Math.floor(this.limit / 4) + 1);
      this.bytes += (size - keys.length) * 8;
      keys = grown(keys, size);
      this.keys[item] = keys;
      this.counts[item] = grown(this.counts[item]!, size);
    }
    keys[n] = other;
    this.counts[item]![n] = count;
    this.lengths[item] = n + 1;
  }

  /**
   * Keeps the `limit` best entries: quickselect on (count desc, then `compare`), so the `limit` best occupy
   * the first positions in no particular order.
   */
  private cut(item: number): void {
    const keys = this.keys[item]!;
    const counts = this.counts[item]!;
    const better = (a: number, b: number): boolean =>
      counts[a]! > counts[b]! || (counts[a] === counts[b] && this.compare(keys[a]!, keys[b]!) < 0);
    const swap = (a: number, b: number): void => {
      const k = keys[a]!;
      keys[a] = keys[b]!;
      keys[b] = k;
      const c = counts[a]!;
      counts[a] = counts[b]!;
      counts[b] = c;
    };
    let lo = 0;
    let hi = this.lengths[item]! - 1;
    const target = this.limit;
    // Partition so that positions < target hold the best `target` entries.
    while (lo < hi) {
      swap((lo + hi) >>> 1, hi);
      let store = lo;
      for (let i = lo; i < hi; i++) {
        if (better(i, hi)) swap(i, store++);
      }
      swap(store, hi);
      if (store === target) break;
      if (store < target) lo = store + 1;
      else hi = store - 1;
    }
    this.lengths[item] = Math.min(this.lengths[item]!, target);
  }
}

export const ADD_NONE = 0;
export const ADD_INCREMENTED = 1;
export const ADD_APPENDED = 2;
export const ADD_CUT = 3;

const EMPTY_KEYS = new Int32Array(0);
const EMPTY_COUNTS = new Float32Array(0);
