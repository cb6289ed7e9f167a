import type { Logger } from '../../logging/logger.ts';
import { FatalError } from '../../errors/index.ts';
import type { Headers } from '../port.ts';
import { partitionForKey } from './murmur2.ts';
import { PartitionLog } from './partition.ts';

/** What a topic needs to know of a consumer group: its committed positions and how to wake its members. */
export interface TopicReader {
  committed(topic: Topic, partition: number): number;
  /** Tells the group's members that new records arrived. */
  notify(): void;
}

export interface TopicLimits {
  readonly maxBacklogRecords: number;
  readonly retainUnconsumedRecords: number;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * A topic of the embedded log: its partitions, the groups that read it, and the producers waiting for room.
 *
 * Memory stays bounded in both cases a topic can be in: while groups read it, producers wait once the records
 * some group has not committed exceed `maxBacklogRecords`, and records every group committed are dropped;
 * while no group reads it, each partition keeps its newest `retainUnconsumedRecords`, like Kafka retention.
 */
export class Topic {
  readonly partitions: readonly PartitionLog[];
  readonly readers = new Set<TopicReader>();
  private nextNullKeyPartition = 0;
  private waiters: Waiter[] = [];
  private warnedRetention = false;

  constructor(
    readonly name: string,
    partitionCount: number,
    private readonly limits: TopicLimits,
    private readonly logger: Logger,
  ) {
    this.partitions = Array.from({ length: partitionCount }, (_, p) => new PartitionLog(name, p));
  }

  /** Same key, same partition (Kafka's murmur2); records without a key are spread round-robin. */
  partitionFor(key: Buffer | null): number {
    if (key === null) {
      const p = this.nextNullKeyPartition;
      this.nextNullKeyPartition = (p + 1) % this.partitions.length;
      return p;
    }
    return partitionForKey(key, this.partitions.length);
  }

  append(key: Buffer | null, value: Buffer, headers: Headers, timestampMs: number): void {
    const log = this.partitions[this.partitionFor(key)]!;
    log.append(key, value, headers, timestampMs);
    if (this.readers.size === 0 && log.size > this.limits.retainUnconsumedRecords) {
      log.truncateBefore(log.endOffset - this.limits.retainUnconsumedRecords);
      if (!this.warnedRetention) {
        this.warnedRetention = true;
        this.logger.warn(
          { topic: this.name, retainUnconsumedRecords: this.limits.retainUnconsumedRecords },
          'no consumer group reads this topic; its oldest records are being dropped',
        );
      }
    }
  }

  /** Wakes the members of every group that reads this topic; called once per send, not per record. */
  notifyReaders(): void {
    for (const reader of this.readers) reader.notify();
  }

  /** Lowest committed offset of `partition` over the groups that read it; the log end when none does. */
  minCommitted(partition: number): number {
    let min = this.partitions[partition]!.endOffset;
    for (const reader of this.readers) min = Math.min(min, reader.committed(this, partition));
    return min;
  }

  /** Records held that some group reading this topic has not committed yet. */
  backlog(): number {
    if (this.readers.size === 0) return 0;
    let total = 0;
    for (const log of this.partitions) total += log.endOffset - this.minCommitted(log.partition);
    return total;
  }

  hasRoom(): boolean {
    return this.readers.size === 0 || this.backlog() <= this.limits.maxBacklogRecords;
  }

  /** Resolves at the next change that may have made room; the caller checks `hasRoom()` again. */
  nextRoomChange(): Promise<void> {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** A group committed on `partition` or left: drop what every group has read and wake waiting producers. */
  committedChanged(partition: number): void {
    const log = this.partitions[partition]!;
    if (this.readers.size > 0) log.truncateBefore(this.minCommitted(partition));
    this.wakeProducers();
  }

  wakeProducers(): void {
    if (this.waiters.length === 0 || !this.hasRoom()) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  close(): void {
    const waiters = this.waiters;
    this.waiters = [];
    const err = new FatalError(
      'EVENT_LOG_CLOSED',
      `embedded event log closed while a producer waited on ${this.name}`,
    );
    for (const waiter of waiters) waiter.reject(err);
  }
}
