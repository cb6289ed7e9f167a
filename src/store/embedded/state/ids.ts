/**
 * Interning of the string ids the edges speak (events, records, the API) to dense int slots the state
 * indexes its typed columns by. A slot is taken at an id's first sighting and kept until `release`; released
 * slots are reused lowest-first, so the columns stay as long as the largest live population, not as the count
 * of every id ever seen (an open world where new ids never stop arriving).
 */
export class IdTable {
  private readonly slots = new Map<string, number>();
  private readonly ids: (string | null)[] = [];
  private free: number[] = [];

  /** Live ids. */
  get size(): number {
    return this.slots.size;
  }

  /** One past the highest slot ever handed out: the length the columns must cover. */
  get extent(): number {
    return this.ids.length;
  }

  /** The slot of `id`, or -1. */
  slotOf(id: string): number {
    return this.slots.get(id) ?? -1;
  }

  /** Takes a slot for `id`, which must not be held (`slotOf(id) === -1`). */
  add(id: string): number {
    const slot = this.free.length > 0 ? this.free.pop()! : this.ids.length;
    if (slot === this.ids.length) this.ids.push(id);
    else this.ids[slot] = id;
    this.slots.set(id, slot);
    return slot;
  }

  /** The id held in `slot`; the slot must be live. */
  idOf(slot: number): string {
    return this.ids[slot]!;
  }

  isLive(slot: number): boolean {
    return slot >= 0 && slot < this.ids.length && this.ids[slot] !== null;
  }

  /** Frees `slot` for reuse. */
  release(slot: number): void {
    const id = this.ids[slot];
    if (id === null || id === undefined) return;
    this.slots.delete(id);
    this.ids[slot] = null;
    this.free.push(slot);
    // Reuse lowest slots first: pop() takes the last, so keep the list sorted descending.
    if (this.free.length > 1 && this.free[this.free.length - 2]! < slot) this.free.sort((a, b) => b - a);
  }

  /** Live slots, ascending. */
  *liveSlots(): IterableIterator<number> {
    for (let s = 0; s < this.ids.length; s++) if (this.ids[s] !== null) yield s;
  }

  // ---- snapshots (state/snapshot.ts) ----

  /** A copy of the table for a snapshot: the id in every slot (null = free) and the free list in reuse order. */
  exportSlots(): { readonly ids: (string | null)[]; readonly free: number[] } {
    return { ids: this.ids.slice(), free: this.free.slice() };
  }

  /** Replaces the whole table with an exported one (`exportSlots`): same slots, same reuse order. */
  importSlots(ids: readonly (string | null)[], free: readonly number[]): void {
    this.slots.clear();
    this.ids.length = 0;
    for (let s = 0; s < ids.length; s++) {
      const id = ids[s] ?? null;
      this.ids.push(id);
      if (id !== null) this.slots.set(id, s);
    }
    this.free = free.slice();
  }
}

/** A copy of `array` with room for at least `length` elements (doubling), or `array` when it has room. */
export function grown<T extends Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array | Uint32Array>(array: T, length: number): T {
  if (array.length >= length) return array;
  let size = Math.max(16, array.length);
  // 1.5×, not 2×: the columns are most of the memory, and a doubled capacity leaves up to half of it unused.
  while (size < length) size = Math.ceil(size * 1.5);
  const bigger = new (array.constructor as new (n: number) => T)(size);
  bigger.set(array);
  return bigger;
}
