import type { Logger } from '../../logging/logger.ts';
import { FatalError } from '../../errors/index.ts';
import { backoffDelayMs, type RetryPolicy } from '../../util/retry.ts';
import type { BatchHandler, ConsumedBatch, ConsumerHealth, ConsumerOptions, EventConsumer, PartitionLag } from '../port.ts';
import type { Group, GroupMember, PartitionRef } from './group.ts';
import { logRedelivery, refuseRun } from '../consumer-common.ts';
import type { Topic } from './topic.ts';

type State = 'idle' | 'running' | 'stopping' | 'stopped';

/** Batches handed out back to back before the loop lets timers and I/O run. */
const BATCHES_PER_YIELD = 16;

interface Redelivery {
  readonly attempt: number;
  readonly atMs: number;
}

/**
 * A member of an embedded consumer group. One loop per consumer, one batch in flight at a time: it picks the
 * next assigned partition with records (round-robin, so a busy partition cannot starve the others), hands up
 * to `maxBatchRecords` of them to the handler and commits after the handler resolves. A rejected batch is not
 * committed; its partition is retried from the committed offset after a growing delay while the other
 * partitions go on. A `FatalError` from the handler stops the consumer and rejects `run()`.
 *
 * The loop waits on one promise that appends, resumes, rebalances and `stop()` resolve: no timer or promise
 * per record.
 */
export class EmbeddedConsumer implements EventConsumer, GroupMember {
  private state: State = 'idle';
  private paused = false;
  private wakeUp: (() => void) | null = null;
  private cursor = 0;
  private readonly redeliveries = new Map<string, Redelivery>();
  /** Partitions this member has handed out a batch of since they were (last) assigned to it. */
  private readonly taken = new Set<string>();
  private lastAssignment: readonly PartitionRef[] = [];
  private done: Promise<void> = Promise.resolve();
  private stopped: Promise<void> | null = null;
  /** The code of the fatal error that stopped the loop, for `health()`. */
  private failedWith: string | null = null;

  constructor(
    private readonly group: Group,
    readonly topics: readonly Topic[],
    private readonly options: ConsumerOptions,
    private readonly redelivery: RetryPolicy,
    private readonly logger: Logger,
  ) {}

  run(handler: BatchHandler): Promise<void> {
    const refused = refuseRun(this.state, this.group.id);
    if (refused) return refused;
    try {
      this.seekStartPositions();
    } catch (err) {
      this.state = 'stopped';
      this.failedWith = err instanceof FatalError ? err.code : 'UNCLASSIFIED';
      return Promise.reject(err as Error);
    }
    this.state = 'running';
    this.group.join(this);
    this.done = this.loop(handler).finally(() => {
      this.state = 'stopped';
      this.group.leave(this);
    });
    return this.done;
  }

  health(): ConsumerHealth {
    const notFetching =
      this.failedWith !== null
        ? `failed (${this.failedWith})`
        : this.state === 'running'
          ? null
          : this.state === 'idle'
            ? 'not started'
            : this.state;
    return { notFetching, fetchUnansweredSinceMs: null };
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.wake();
  }

  async lag(): Promise<PartitionLag[]> {
    const refs: readonly { topic: Topic; partition: number }[] =
      this.state === 'running'
        ? this.group.assignment(this)
        : this.topics.flatMap((topic) =>
            topic.partitions.map((log) => ({ topic, partition: log.partition })),
          );
    return refs.map(({ topic, partition }) => ({
      topic: topic.name,
      partition,
      lag: topic.partitions[partition]!.endOffset - this.group.committed(topic, partition),
    }));
  }

  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    if (this.state === 'idle' || this.state === 'stopped') {
      this.state = 'stopped';
      this.stopped = Promise.resolve();
    } else {
      this.state = 'stopping';
      this.wake();
      // run() reports a fatal error; stop() only promises that the consumer is done.
      this.stopped = this.done.then(
        () => undefined,
        () => undefined,
      );
    }
    return this.stopped;
  }

  wake(): void {
    const wakeUp = this.wakeUp;
    if (wakeUp) {
      this.wakeUp = null;
      wakeUp();
    }
  }

  private async loop(handler: BatchHandler): Promise<void> {
    let sinceYield = 0;
    while (this.state === 'running') {
      const next = this.paused ? { waitMs: null } : this.nextBatch(Date.now());
      if ('batch' in next) {
        await this.deliver(handler, next.ref, next.batch);
        if (++sinceYield >= BATCHES_PER_YIELD) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } else {
        sinceYield = 0;
        await this.sleep(next.waitMs);
      }
    }
  }

  /**
   * `ConsumerOptions.startAt`, applied when the consumer starts (on this log nothing else can hold the
   * partitions meanwhile): the group's position moves there, backwards too. Past the end: a FatalError (the
   * positions were recorded on another log); before the oldest record held: from that record, warned.
   */
  private seekStartPositions(): void {
    const startAt = this.options.startAt;
    if (!startAt) return;
    for (const topic of this.topics) {
      for (const [key, value] of Object.entries(startAt[topic.name] ?? {})) {
        const partition = Number(key);
        const log = topic.partitions[partition];
        const offset = Number(value);
        if (!log || !Number.isSafeInteger(offset) || offset < 0 || offset > log.endOffset) {
          throw new FatalError(
            'START_OFFSET_OUT_OF_RANGE',
            `group ${this.group.id}: start position ${value} for ${topic.name} partition ${key} is beyond what the log holds ` +
              `(${log ? `end offset ${log.endOffset}` : 'no such partition'}); the positions belong to another log`,
          );
        }
        let from = offset;
        if (offset < log.startOffset) {
          this.logger.warn(
            { topic: topic.name, partition, offset: value, code: 'START_OFFSET_TRUNCATED', oldest: log.startOffset },
            'start position is older than the oldest record held; starting there (the records between are gone)',
          );
          from = log.startOffset;
        }
        this.group.seek(topic, partition, from);
      }
    }
  }

  /** The next batch to hand out, or how long until a partition in backoff may be retried (null: until woken). */
  private nextBatch(nowMs: number): { ref: PartitionRef; batch: ConsumedBatch } | { waitMs: number | null } {
    const assigned = this.group.assignment(this);
    this.forgetRevoked(assigned);
    let waitMs: number | null = null;
    for (let i = 0; i < assigned.length; i++) {
      const index = (this.cursor + i) % assigned.length;
      const ref = assigned[index]!;
      const log = ref.topic.partitions[ref.partition]!;
      const from = this.group.committed(ref.topic, ref.partition);
      if (from >= log.endOffset) continue;
      const redelivery = this.redeliveries.get(ref.id);
      if (redelivery && redelivery.atMs > nowMs) {
        waitMs = Math.min(waitMs ?? Infinity, redelivery.atMs - nowMs);
        continue;
      }
      if (!this.group.tryLock(ref)) continue;
      this.cursor = index + 1;
      this.firstTake(ref);
      const records = log.read(from, this.options.maxBatchRecords);
      const batch = {
        topic: ref.topic.name,
        partition: ref.partition,
        records,
        highWatermark: String(log.endOffset),
      };
      return { ref, batch };
    }
    return { waitMs };
  }

  /** A rebalance deals a new assignment array: partitions no longer in it must be announced again if they return. */
  private forgetRevoked(assigned: readonly PartitionRef[]): void {
    if (assigned === this.lastAssignment) return;
    this.lastAssignment = assigned;
    const kept = new Set(assigned.map((ref) => ref.id));
    for (const id of this.taken) if (!kept.has(id)) this.taken.delete(id);
  }

  /**
   * The first batch of a newly assigned partition: its lock was just won, so the previous owner's batch on it
   * has committed or failed, and whatever that owner wrote is in the store before this member is told.
   */
  private firstTake(ref: PartitionRef): void {
    if (this.taken.has(ref.id)) return;
    this.taken.add(ref.id);
    this.options.onPartitionsAssigned?.();
  }

  private async deliver(handler: BatchHandler, ref: PartitionRef, batch: ConsumedBatch): Promise<void> {
    const last = batch.records[batch.records.length - 1]!;
    try {
      await handler(batch);
    } catch (err) {
      if (err instanceof FatalError) {
        this.failedWith = err.code;
        this.logger.error(
          { topic: batch.topic, partition: batch.partition, code: err.code, err },
          'fatal error in batch handler; consumer stops',
        );
        throw err;
      }
      this.scheduleRedelivery(ref, batch, err);
      return;
    } finally {
      this.group.unlock(ref);
    }
    this.redeliveries.delete(ref.id);
    this.group.commit(ref.topic, ref.partition, Number(last.offset) + 1);
  }

  private scheduleRedelivery(ref: PartitionRef, batch: ConsumedBatch, err: unknown): void {
    const attempt = (this.redeliveries.get(ref.id)?.attempt ?? 0) + 1;
    const delayMs = backoffDelayMs(this.redelivery, Math.min(attempt, 30));
    this.redeliveries.set(ref.id, { attempt, atMs: Date.now() + delayMs });
    logRedelivery(this.logger, batch, err, attempt, delayMs);
  }

  private sleep(waitMs: number | null): Promise<void> {
    return new Promise((resolve) => {
      const timer = waitMs === null ? undefined : setTimeout(() => this.wake(), waitMs);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
