import type { Headers, LogRecord } from '../port.ts';

/**
 * One partition of the embedded log: an append-only array of records whose head is dropped once every group
 * has committed past it. Offsets are plain numbers inside (2^53 records will not fit in memory anyway) and
 * decimal strings on the records, as the port promises.
 */
export class PartitionLog {
  /** Records from `base`; the first `head` of them are dropped and wait for the next compaction. */
  private records: LogRecord[] = [];
  private base = 0;
  private head = 0;

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  /** Offset of the oldest record still held. */
  get startOffset(): number {
    return this.base + this.head;
  }

  /** Offset the next record will get (Kafka's log-end offset, the high watermark here). */
  get endOffset(): number {
    return this.base + this.records.length;
  }

  /** Records held in memory. */
  get size(): number {
    return this.records.length - this.head;
  }

  append(key: Buffer | null, value: Buffer, headers: Headers, timestampMs: number): void {
    const offset = String(this.endOffset);
    this.records.push({
      topic: this.topic,
      partition: this.partition,
      offset,
      key,
      value,
      headers,
      timestampMs,
    });
  }

  /** Up to `max` records from `from` on; an offset already dropped reads from the oldest one held. */
  read(from: number, max: number): LogRecord[] {
    const start = Math.max(from, this.startOffset) - this.base;
    return this.records.slice(start, Math.min(start + max, this.records.length));
  }

  /** Drops the records before `offset`; returns how many went. */
  truncateBefore(offset: number): number {
    const target = Math.min(offset, this.endOffset) - this.base;
    if (target <= this.head) return 0;
    const dropped = target - this.head;
    this.head = target;
    // Copying the live tail is O(live), so it is done only when the dead prefix is at least as long: the cost
    // per record stays constant and dead records never hold more than the live ones (plus a small floor).
    if (this.head >= 1_024 && this.head * 2 >= this.records.length) {
      this.records = this.records.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
    return dropped;
  }
}
