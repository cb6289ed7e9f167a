/**
 * The event log port: an ordered, partitioned, replayable log with consumer groups, as Kafka has.
 * Stages never see this; the pipeline runner does. Adapters: `embedded/` (in-process) and `kafka/`.
 *
 * Delivery contract, shared by every adapter and checked by `test/eventlog/contract.ts`:
 * - records with the same key land in the same partition and are delivered in the order they were sent;
 * - a batch's offsets are committed only after its handler resolves (at-least-once);
 * - a handler that rejects gets the same records again (from the last committed offset);
 * - `stop()` stops fetching, waits for the batch in flight, commits it and leaves the group; it is idempotent.
 */

export type Headers = Readonly<Record<string, Buffer>>;

export interface LogRecord {
  readonly topic: string;
  readonly partition: number;
  /** Decimal string, as Kafka offsets exceed 2^53 in principle. */
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer;
  /**
   * True when the log holds a null value (a Kafka tombstone); `value` is then empty. Absent = not null, which
   * is always the case on the embedded log (it has no null values).
   */
  readonly valueIsNull?: boolean;
  readonly headers: Headers;
  /** When the log appended the record (not the event time inside it). */
  readonly timestampMs: number;
}

export interface OutgoingRecord {
  readonly topic: string;
  readonly key: string | Buffer | null;
  readonly value: Buffer;
  readonly headers?: Readonly<Record<string, string | Buffer>>;
}

export interface ConsumedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly records: readonly LogRecord[];
  /** Offset after the last record the log holds for this partition, when the adapter knows it (for lag). */
  readonly highWatermark: string | null;
}

/** Resolves once every output of the batch is acknowledged; only then are its offsets committed. */
export type BatchHandler = (batch: ConsumedBatch) => Promise<void>;

export interface ConsumerOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  /** Where a group with no committed offset starts. */
  readonly fromBeginning: boolean;
  /** Upper bound of records handed to one handler call. */
  readonly maxBatchRecords: number;
  /**
   * Told that this consumer now owns a partition it did not own before (a rebalance, or the first
   * assignment), synchronously and before the handler gets a batch of it. A store that caches state owned by
   * partition re-reads it (`VectorStore.ownershipChanged`). Embedded log: called once the partition's previous
   * owner has finished its batch on it. Kafka: called on every group join.
   */
  readonly onPartitionsAssigned?: () => void;
}

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  readonly lag: number;
}

/** What a consumer can tell about itself now, for readiness (`EventConsumer.health`). */
export interface ConsumerHealth {
  /**
   * Null while the consumer fetches or waits for records (a pause included: it was asked for); otherwise why
   * it does not: not started, joining its group, crashed and being restarted by the client, failed, stopped.
   */
  readonly notFetching: string | null;
  /**
   * Since when (epoch ms, as `Date.now()`) a fetch sent to the log has gone unanswered; null when none is
   * pending. A log that stops answering without an error (a network partition) shows here before any crash.
   * Always null on the embedded log, which has nothing to wait for.
   */
  readonly fetchUnansweredSinceMs: number | null;
}

export interface EventConsumer {
  /** Consumes until `stop()`; rejects only on a fatal error. */
  run(handler: BatchHandler): Promise<void>;
  /** Synchronous and cheap: readiness probes call it on every request. */
  health(): ConsumerHealth;
  /** Stops fetching new batches (the batch in flight finishes); used for backpressure. */
  pause(): void;
  resume(): void;
  /** Records not yet committed by this group, per assigned partition. */
  lag(): Promise<PartitionLag[]>;
  stop(): Promise<void>;
}

export interface EventProducer {
  /** Resolves when the log has acknowledged every record; per-key order is kept. */
  send(records: readonly OutgoingRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  /** Broker-side topic config, e.g. `cleanup.policy: compact`. */
  readonly config?: Readonly<Record<string, string>>;
}

export interface EventLog {
  readonly kind: 'embedded' | 'kafka';
  /** Creates the topics that do not exist yet; existing ones are left as they are. */
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  consumer(options: ConsumerOptions): EventConsumer;
  producer(): EventProducer;
  close(): Promise<void>;
}
