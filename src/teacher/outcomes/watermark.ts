/**
 * A watermark over the partitions of one topic: the event time up to which every partition has been read,
 * i.e. the smallest of the partitions' latest event times, so a partition read behind the others holds it
 * back. A partition that has delivered nothing holds it at -Infinity when it is `expect`ed (the log said it
 * exists), and does not count otherwise; with none, it is -Infinity. It can move back when a partition not
 * expected shows up late; the join it feeds never moves back (`OutcomeJoin.advance`).
 */
export class PartitionWatermark {
  private readonly latest = new Map<number, number>();

  /** Partitions known to exist before they deliver anything. */
  expect(partitions: Iterable<number>): void {
    for (const p of partitions) if (!this.latest.has(p)) this.latest.set(p, Number.NEGATIVE_INFINITY);
  }

  /** Records that `partition` has been read up to these event times. */
  update(partition: number, timesMs: Iterable<number>): void {
    let latest = this.latest.get(partition) ?? Number.NEGATIVE_INFINITY;
    for (const t of timesMs) if (t > latest) latest = t;
    this.latest.set(partition, latest);
  }

  get ms(): number {
    return this.latest.size === 0 ? Number.NEGATIVE_INFINITY : Math.min(...this.latest.values());
  }
}
