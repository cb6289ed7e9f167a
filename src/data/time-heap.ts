/**
 * A binary min-heap of small integer ids (users) ordered by a time each id owns in a shared `Float64Array`.
 * The synthetic generator keeps every user in it once, keyed by when that user acts next, so finding the next
 * event of the whole population is O(log users) and the memory is one `Int32Array`.
 *
 * Ties are broken by the smaller id, which keeps the order deterministic whatever the insertion history.
 */
export class TimeHeap {
  private readonly heap: Int32Array;
  private length = 0;

  /**
   * `times[id]` is read whenever the heap compares ids: set it before {@link TimeHeap.push}, and change it for
   * an id already in the heap only through {@link TimeHeap.updateTop}.
   */
  constructor(
    private readonly times: Float64Array,
    capacity: number,
  ) {
    this.heap = new Int32Array(capacity);
  }

  get size(): number {
    return this.length;
  }

  push(id: number): void {
    if (this.length === this.heap.length) throw new RangeError('heap is full');
    this.heap[this.length] = id;
    this.siftUp(this.length++);
  }

  /** The id with the earliest time, or -1 when empty. */
  peek(): number {
    return this.length === 0 ? -1 : (this.heap[0] as number);
  }

  /** Removes and returns the earliest id, or -1 when empty. */
  pop(): number {
    if (this.length === 0) return -1;
    const top = this.heap[0] as number;
    this.length--;
    if (this.length > 0) {
      this.heap[0] = this.heap[this.length] as number;
      this.siftDown(0);
    }
    return top;
  }

  /** Sets the time of the id at the top and restores order: one sift instead of a pop and a push. */
  updateTop(time: number): void {
    if (this.length === 0) throw new RangeError('heap is empty');
    this.times[this.heap[0] as number] = time;
    this.siftDown(0);
  }

  private less(x: number, y: number): boolean {
    const tx = this.times[x] as number;
    const ty = this.times[y] as number;
    return tx < ty || (tx === ty && x < y);
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    const id = heap[index] as number;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as number;
      if (!this.less(id, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = id;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const n = this.length;
    const id = heap[index] as number;
    let i = index;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && this.less(heap[right] as number, heap[child] as number)) child = right;
      const c = heap[child] as number;
      if (!this.less(c, id)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = id;
  }
}
