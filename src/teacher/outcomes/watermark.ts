/**
 * A watermark over the partitions of one topic: the event time up to which every partition has been read,
 * i.e. the smallest of the partitions' latest event times, so a partition read behind the others holds it
 * back. A partition that has delivered nothing holds it at -Infinity when it is `expect`ed (the log said it
 * exists), and does not count otherwise. The value never moves back.
 */
export class PartitionWatermark {
  private readonly latest = new Map<number, number>();
  private value = Number.NEGATIVE_INFINITY;

  /** Partitions known to exist before they deliver anything. */
  expect(partitions: Iterable<number>): void {
    for (const p of partitions) if (!this.latest.has(p)) this.latest.set(p, Number.NEGATIVE_INFINITY);
  }

  /** Records that `partition` has been read up to these event times; returns the watermark. */
  update(partition: number, timesMs: Iterable<number>): number {
    let latest = this.latest.get(partition) ?? Number.NEGATIVE_INFINITY;
    for (const t of timesMs) if (t > latest) latest = t;
    this.latest.set(partition, latest);
    let min = Number.POSITIVE_INFINITY;
    for (const t of this.latest.values()) if (t < min) min = t;
    if (min > this.value) this.value = min;
    return this.value;
  }

  get ms(): number {
    return this.value;
  }
}
