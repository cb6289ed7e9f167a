/**
 * Vectors of one collection in one growable `Float32Array` (row = slot), with the string id ↔ int slot
 * mapping kept at this edge. Slots are dense and never reused, so a slot is also the label of the vector in
 * an HNSW graph and can be shipped to a worker as a plain int.
 */
export class VectorSlab {
  private readonly ids: string[] = [];
  private readonly slots = new Map<string, number>();
  private data: Float32Array;

  constructor(
    readonly dimension: number,
    initialRows = 1_024,
  ) {
    this.data = new Float32Array(initialRows * dimension);
  }

  get size(): number {
    return this.ids.length;
  }

  slotOf(id: string): number | undefined {
    return this.slots.get(id);
  }

  idOf(slot: number): string {
    const id = this.ids[slot];
    if (id === undefined) throw new RangeError(`slot ${slot} is not in use (size ${this.ids.length})`);
    return id;
  }

  /**
   * Writes `vector` as `id`'s row, adding a slot when `id` is new. Returns the slot, or -1 when `id` already
   * had exactly this vector (stores re-write items whose delta changed only counters; that must not cost a
   * graph refresh).
   */
  upsert(id: string, vector: Float32Array): number {
    const dim = this.dimension;
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = this.ids.length;
      this.ensureRows(slot + 1);
      this.ids.push(id);
      this.slots.set(id, slot);
    } else if (this.rowEquals(slot, vector)) return -1;
    this.data.set(vector.subarray(0, dim), slot * dim);
    return slot;
  }

  private rowEquals(slot: number, vector: Float32Array): boolean {
    const m = this.data;
    for (let d = 0, o = slot * this.dimension; d < this.dimension; d++, o++) if (m[o] !== vector[d]) return false;
    return true;
  }

  dot(query: Float32Array, slot: number): number {
    const dim = this.dimension;
    const m = this.data;
    let s = 0;
    for (let d = 0, o = slot * dim; d < dim; d++, o++) s += m[o]! * query[d]!;
    return s;
  }

  /** A copy of the rows of `slots`, packed in that order (a fresh buffer, so it can be transferred). */
  gather(slots: Int32Array): Float32Array {
    const dim = this.dimension;
    const out = new Float32Array(slots.length * dim);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      out.set(this.data.subarray(s * dim, (s + 1) * dim), i * dim);
    }
    return out;
  }

  private ensureRows(rows: number): void {
    const dim = this.dimension;
    if (rows * dim <= this.data.length) return;
    const grown = new Float32Array(Math.max(rows, (this.data.length / dim) * 2) * dim);
    grown.set(this.data);
    this.data = grown;
  }
}

/**
 * A set of slots as a packed `Int32Array` list plus a slot → position column, so that add, has and clear are
 * O(1) and a scan touches only the members (no `Set` of boxed numbers on the hot path).
 */
export class SlotSet {
  private list = new Int32Array(256);
  private position = new Int32Array(1_024).fill(-1);
  private count = 0;

  get size(): number {
    return this.count;
  }

  at(i: number): number {
    return this.list[i]!;
  }

  has(slot: number): boolean {
    return slot < this.position.length && this.position[slot]! >= 0;
  }

  /** Adds `slot`; false when it was already a member. */
  add(slot: number): boolean {
    if (this.has(slot)) return false;
    this.growPosition(slot + 1);
    if (this.count === this.list.length) {
      const grown = new Int32Array(this.list.length * 2);
      grown.set(this.list);
      this.list = grown;
    }
    this.list[this.count] = slot;
    this.position[slot] = this.count++;
    return true;
  }

  /** The members, in insertion order, as a fresh array. */
  toArray(): Int32Array {
    return this.list.slice(0, this.count);
  }

  clear(): void {
    for (let i = 0; i < this.count; i++) this.position[this.list[i]!] = -1;
    this.count = 0;
  }

  private growPosition(size: number): void {
    if (size <= this.position.length) return;
    const grown = new Int32Array(Math.max(size, this.position.length * 2)).fill(-1);
    grown.set(this.position);
    this.position = grown;
  }
}
