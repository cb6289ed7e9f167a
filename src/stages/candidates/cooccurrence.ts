import { KeyScratch } from '../../util/key-scratch.ts';
import type { CooccurrenceRows, ItemProfile } from '../../store/port.ts';

/**
 * Item-CF signals: for every item that co-occurs with the user's recent items, its summed count, the same sum
 * weighted by recency, how many recent items it co-occurs with, and the strongest of them. Aggregated over the
 * store's rows in typed arrays indexed by the store's dense item keys (no object per co-occurring item, no
 * string key); a signal object is built only for the ids evidence asks about.
 */

/** Co-occurrence of one candidate with the user's recent items; reused by the evidence stage. */
export interface CooccurrenceSignal {
  /** Sum of counts over the recent items. */
  readonly total: number;
  /** The same sum with the i-th most recent item weighted `RECENCY_DECAY^i`: the latest item speaks loudest. */
  readonly recencyWeighted: number;
  /** How many of the recent items co-occur with it. */
  readonly items: number;
  /** The recent item with the largest count. */
  readonly strongestWith: string;
  readonly strongestCount: number;
}

/** Weight of the i-th most recent item in `recencyWeighted`; chosen on ml-100k's streaming protocol. */
export const RECENCY_DECAY = 0.7;

/** The signals of one candidate set; `get` answers for any item id. */
export interface CooccurrenceSignals {
  get(itemId: string): CooccurrenceSignal | undefined;
  /**
   * The `k` ids with the strongest recency-weighted co-occurrence that `skip` does not reject, best first (ties
   * by total, then id). A bounded selection, not a sort of every co-occurring item, and `skip` (the consumed
   * filter) is asked only about ids that would make the cut.
   */
  strongest(k: number, skip: (id: string) => boolean): string[];
}

/**
 * Reusable per-key scratch: where each key's signal sits in the result being built, valid for keys stamped
 * with the current generation. One aggregation at a time (it is synchronous); a result keeps working after a
 * later aggregation reuses the scratch, through its own lookup built on demand.
 */
const scratch = new KeyScratch();

export function aggregateCooccurrence(rows: CooccurrenceRows): CooccurrenceSignals {
  const generation = scratch.begin(rows.keySpace);
  const { values: index, stamps: stamp } = scratch;
  // Sized once for every entry the rows hold (an upper bound of the distinct keys): no growing mid-fold.
  let entries = 0;
  for (let r = 0; r < rows.rows; r++) entries += rows.length(r);
  const acc = new Accumulator(entries);
  let weight = 1;
  for (let r = 0; r < rows.rows; r++) {
    const length = rows.length(r);
    // Both in-tree sources give a row's arrays; a source with entry accessors only is copied row by row.
    const keys = rows.keysOf?.(r) ?? rowEntries(length, (e) => rows.key(r, e));
    const counts = rows.countsOf?.(r) ?? rowEntries(length, (e) => rows.count(r, e));
    for (let e = 0; e < length; e++) {
      const count = counts[e]!;
      if (count <= 0) continue;
      const key = keys[e]!;
      if (stamp[key] !== generation) {
        stamp[key] = generation;
        index[key] = acc.add(key);
      }
      acc.fold(index[key]!, r, count, weight);
    }
    weight *= RECENCY_DECAY;
  }
  return new SignalSet(rows, acc, generation);
}

/** A row's entries read one call each, for a source without `keysOf`/`countsOf`. */
function rowEntries(length: number, at: (entry: number) => number): Float64Array {
  const out = new Float64Array(length);
  for (let e = 0; e < length; e++) out[e] = at(e);
  return out;
}

/** Rows over profiles (stores read through `StoreView`): keys are interned per call. */
export function rowsFromProfiles(items: readonly ItemProfile[]): CooccurrenceRows {
  const keyOf = new Map<string, number>();
  const ids: string[] = [];
  const keys: Int32Array[] = [];
  const counts: Float64Array[] = [];
  for (const item of items) {
    const k = new Int32Array(item.cooccurrence.size);
    const c = new Float64Array(item.cooccurrence.size);
    let e = 0;
    for (const [id, count] of item.cooccurrence) {
      let key = keyOf.get(id);
      if (key === undefined) {
        key = ids.length;
        keyOf.set(id, key);
        ids.push(id);
      }
      k[e] = key;
      c[e++] = count;
    }
    keys.push(k);
    counts.push(c);
  }
  return {
    rows: items.length,
    rowId: (r) => items[r]!.itemId,
    length: (r) => keys[r]!.length,
    key: (r, e) => keys[r]![e]!,
    count: (r, e) => counts[r]![e]!,
    keysOf: (r) => keys[r]!,
    countsOf: (r) => counts[r]!,
    keySpace: ids.length,
    idOf: (key) => ids[key]!,
    keyOf: (id) => keyOf.get(id) ?? -1,
  };
}

/** Signals in parallel typed arrays, one entry per co-occurring key. */
class Accumulator {
  size = 0;
  keys: Int32Array;
  total: Float64Array;
  weighted: Float64Array;
  items: Int32Array;
  strongestRow: Int32Array;
  strongestCount: Float64Array;

  constructor(capacity: number) {
    const n = Math.max(1, capacity);
    this.keys = new Int32Array(n);
    this.total = new Float64Array(n);
    this.weighted = new Float64Array(n);
    this.items = new Int32Array(n);
    this.strongestRow = new Int32Array(n);
    this.strongestCount = new Float64Array(n);
  }

  add(key: number): number {
    const i = this.size++;
    this.keys[i] = key;
    this.total[i] = 0;
    this.weighted[i] = 0;
    this.items[i] = 0;
    this.strongestRow[i] = -1;
    this.strongestCount[i] = 0;
    return i;
  }

  fold(i: number, row: number, count: number, weight: number): void {
    this.total[i]! += count;
    this.weighted[i]! += count * weight;
    this.items[i]! += 1;
    if (count > this.strongestCount[i]!) {
      this.strongestCount[i] = count;
      this.strongestRow[i] = row;
    }
  }
}

class SignalSet implements CooccurrenceSignals {
  private own: Map<number, number> | null = null;

  constructor(
    private readonly rows: CooccurrenceRows,
    private readonly acc: Accumulator,
    private readonly generation: number,
  ) {}

  get(itemId: string): CooccurrenceSignal | undefined {
    const key = this.rows.keyOf(itemId);
    if (key < 0) return undefined;
    const i = this.indexOf(key);
    return i < 0 ? undefined : this.signal(i);
  }

  strongest(k: number, skip: (id: string) => boolean): string[] {
    if (k <= 0) return [];
    const a = this.acc;
    const ids = new Map<number, string>();
    const idOf = (i: number): string => {
      let id = ids.get(i);
      if (id === undefined) ids.set(i, (id = this.rows.idOf(a.keys[i]!)));
      return id;
    };
    const before = (x: number, y: number): boolean =>
      a.weighted[x]! > a.weighted[y]! ||
      (a.weighted[x] === a.weighted[y] && (a.total[x]! > a.total[y]! || (a.total[x] === a.total[y] && idOf(x) < idOf(y))));
    const top: number[] = [];
    for (let i = 0; i < a.size; i++) {
      if (top.length === k && !before(i, top[k - 1]!)) continue;
      if (skip(idOf(i))) continue;
      let at = top.length;
      while (at > 0 && before(i, top[at - 1]!)) at--;
      top.splice(at, 0, i);
      if (top.length > k) top.pop();
    }
    return top.map(idOf);
  }

  private signal(i: number): CooccurrenceSignal {
    const a = this.acc;
    return {
      total: a.total[i]!,
      recencyWeighted: a.weighted[i]!,
      items: a.items[i]!,
      strongestWith: this.rows.rowId(a.strongestRow[i]!),
      strongestCount: a.strongestCount[i]!,
    };
  }

  private indexOf(key: number): number {
    if (scratch.generation === this.generation) return scratch.get(key);
    if (!this.own) {
      this.own = new Map();
      for (let i = 0; i < this.acc.size; i++) this.own.set(this.acc.keys[i]!, i);
    }
    return this.own.get(key) ?? -1;
  }
}
