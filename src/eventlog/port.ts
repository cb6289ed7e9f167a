/**
 * The event log port: an ordered, partitioned, replayable log with consumer groups, as Kafka has.
 * Stages never see this; the pipeline runner does. Adapters: `embedded/` (in-process) and `kafka/`.
 *
 * Delivery contract, shared by every adapter and checked by `test/eventlog/contract.ts`:
 * - records with the same key land in the same partition and are delivered in the order they were sent;
 * - a batch's offsets are committed only after its handler resolves (at-least-once);
 * - a handler that rejects gets the same records again (from the last committed offset);
 * - `stop()` stops fetching, waits for the batch in flight, commits it and leaves the group; it is idempotent;
 * - `startAt` starts listed partitions at given offsets instead of the committed ones (a restored checkpoint).
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

/**
 * Where to start reading, per partition: topic → partition → the next offset to consume (a decimal string, as
 * `LogRecord.offset`). A checkpoint records these for the state it holds (`ConsumerOptions.startAt`).
 */
export type StartPositions = Readonly<Record<string, Readonly<Record<number, string>>>>;

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
  /**
   * Per partition, the offset to start at instead of the group's committed one: a restored checkpoint's
   * positions (its state reflects every record before them, so they win whether the group committed less or
   * more). Applied once per partition, when this consumer first gets it, and committed for the group as a
   * batch ending there would be; later assignments read from the committed offsets as usual, and partitions not
   * listed start as they would without it. An offset past the partition's end rejects `run()` with
   * `FatalError START_OFFSET_OUT_OF_RANGE` (the positions belong to another log, e.g. a recreated topic); one
   * before the oldest record the log still holds starts at that record, with a warning (records between are
   * gone). Topics the consumer does not read are ignored.
   */
  readonly startAt?: StartPositions;
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

/** The consumed position a transactional send commits with its records (`TransactionalProducer`). */
export interface ConsumedPosition {
  readonly groupId: string;
  readonly topic: string;
  readonly partition: number;
  /** The next offset to consume: the batch's last record's offset + 1 (decimal string). */
  readonly nextOffset: string;
}

/**
 * Sends whose records and consumed position commit together or not at all (a Kafka transaction with
 * `sendOffsets`): a reader with read_committed sees the records only once the group's offset has moved past
 * the batch, and a send that rejects has made neither visible, so the redelivered batch's outputs are not
 * duplicates. Sends for one consumed partition are serialized; sends for different partitions may overlap.
 */
export interface TransactionalProducer {
  /** Resolves once the transaction is committed; rejects (classified) after aborting it. */
  sendWithOffsets(records: readonly OutgoingRecord[], consumed: ConsumedPosition): Promise<void>;
  /** Waits for the transactions in flight, then disconnects; idempotent. */
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
  /**
   * Which log the offsets belong to: positions recorded on one log (a checkpoint's) mean the same records on
   * another only when both name the same scope. Embedded: unique per log instance (nothing survives the
   * process, so a new process's offsets count from 0 again); Kafka: `kafka` (the same topic names on the
   * configured cluster). Absent: the log cannot tell, and recorded positions are never applied to it.
   */
  readonly offsetsScope?: string;
  /** Creates the topics that do not exist yet; existing ones are left as they are. */
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  consumer(options: ConsumerOptions): EventConsumer;
  producer(): EventProducer;
  /**
   * A producer that commits each batch's outputs with its consumed offsets, where the log is configured for it
   * (Kafka with `eventLog.kafka.exactlyOnce`); null or absent: outputs are sent with `producer()` and offsets
   * committed by the consumer after the handler (at-least-once). The embedded log has none: its send appends
   * all records or none and its commit cannot fail after that, within a process whose end loses both.
   */
  transactionalProducer?(): TransactionalProducer | null;
  /**
   * Where a consumer with these options would start now, per partition of its topics: the group's committed
   * offset, else (no commit yet) the oldest record held when `fromBeginning`, the log end otherwise. A pipeline
   * with checkpoints and none to resume from records these in its first checkpoint before it consumes
   * (`pipeline/runner.ts`), so that a restart always finds state and positions that match. Absent: the log
   * cannot tell.
   */
  startPositions?(options: StartQuery): Promise<StartPositions>;
  close(): Promise<void>;
}

/** What `EventLog.startPositions` needs of a consumer's options. */
export type StartQuery = Pick<ConsumerOptions, 'groupId' | 'topics' | 'fromBeginning'>;
