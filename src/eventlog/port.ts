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
}

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  readonly lag: number;
}

export interface EventConsumer {
  /** Consumes until `stop()`; rejects only on a fatal error. */
  run(handler: BatchHandler): Promise<void>;
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
