import { randomUUID } from 'node:crypto';
import type { Config } from '../../config/schema.ts';
import { BadInputError, FatalError } from '../../errors/index.ts';
import type { Logger } from '../../logging/logger.ts';
import type { RetryPolicy } from '../../util/retry.ts';
import type {
  ConsumerOptions,
  EventConsumer,
  EventLog,
  EventProducer,
  Headers,
  OutgoingRecord,
  StartPositions,
  StartQuery,
  TopicSpec,
} from '../port.ts';
import { EmbeddedConsumer } from './consumer.ts';
import { Group } from './group.ts';
import { EmbeddedProducer, type AppendTarget } from './producer.ts';
import { Topic } from './topic.ts';

const EMPTY_HEADERS: Headers = Object.freeze({});

/**
 * The in-process event log, the default when no Kafka is configured: the port's semantics in one process, no
 * server. See `Topic` for the memory bound and backpressure, `Group` for consumer groups with several
 * members, `EmbeddedConsumer` for delivery and redelivery.
 *
 * Differences from the Kafka adapter, all on the lenient side: a topic is created on first use (with
 * `eventLog.topics.partitions`) when `ensureTopics` did not create it; buffers are not copied, so a producer
 * must not change a buffer after `send`; nothing survives the process.
 *
 * Like a broker, a topic refuses a record larger than its `max.message.bytes` (from `ensureTopics`, else
 * `eventLog.topics.maxMessageBytes`, Kafka's default), with `BadInputError MESSAGE_TOO_LARGE` and nothing of
 * the send appended: a pipeline that works here must also bound what it produces on Kafka.
 */
export function createEmbeddedEventLog(config: Config['eventLog'], logger: Logger): EventLog {
  return new EmbeddedEventLog(config, logger.child({ component: 'eventlog-embedded' }));
}

class EmbeddedEventLog implements EventLog, AppendTarget {
  readonly kind = 'embedded' as const;
  /** Offsets count from 0 in every instance: positions recorded on one mean nothing to another. */
  readonly offsetsScope = `embedded:${randomUUID()}`;
  closed = false;
  private readonly topics = new Map<string, Topic>();
  private readonly groups = new Map<string, Group>();
  private readonly consumers = new Set<EmbeddedConsumer>();
  private readonly producers = new Set<EmbeddedProducer>();
  private readonly redelivery: RetryPolicy;
  /** `max.message.bytes` of topics that `ensureTopics` created with one. */
  private readonly maxMessageBytes = new Map<string, number>();

  constructor(
    private readonly config: Config['eventLog'],
    private readonly logger: Logger,
  ) {
    this.redelivery = {
      retries: Number.POSITIVE_INFINITY,
      initialDelayMs: config.embedded.redeliveryDelayMs,
      maxDelayMs: config.embedded.maxRedeliveryDelayMs,
      multiplier: 2,
      jitter: 0.2,
    };
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.checkOpen();
    for (const spec of specs) {
      if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
        throw new BadInputError(
          'INVALID_TOPIC_SPEC',
          `topic ${spec.name}: partitions must be a positive integer`,
        );
      }
      this.topic(spec.name, spec.partitions);
      const maxBytes = spec.config?.['max.message.bytes'];
      if (maxBytes !== undefined) {
        const parsed = Number(maxBytes);
        if (!Number.isSafeInteger(parsed) || parsed < 1) {
          throw new BadInputError('INVALID_TOPIC_SPEC', `topic ${spec.name}: max.message.bytes must be a positive integer`);
        }
        this.maxMessageBytes.set(spec.name, parsed);
      }
    }
  }

  consumer(options: ConsumerOptions): EventConsumer {
    this.checkOpen();
    validateConsumerOptions(options);
    let group = this.groups.get(options.groupId);
    if (!group) {
      group = new Group(options.groupId);
      this.groups.set(options.groupId, group);
    }
    const topics = [...new Set(options.topics)].map((name) => this.topic(name));
    for (const topic of topics) group.subscribe(topic, options.fromBeginning);
    const consumer = new EmbeddedConsumer(
      group,
      topics,
      options,
      this.redelivery,
      this.logger.child({ groupId: options.groupId }),
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * The group's committed position per partition (fixed when its first consumer was created), else the oldest
   * record held (`fromBeginning`) or the log end. Topics are created on first use, as everywhere on this log.
   */
  async startPositions(query: StartQuery): Promise<StartPositions> {
    this.checkOpen();
    const group = this.groups.get(query.groupId);
    const out: Record<string, Record<number, string>> = {};
    for (const name of new Set(query.topics)) {
      const topic = this.topic(name);
      const positions: Record<number, string> = {};
      for (const log of topic.partitions) {
        const start = group?.subscribes(topic) ? group.committed(topic, log.partition) : query.fromBeginning ? log.startOffset : log.endOffset;
        positions[log.partition] = String(start);
      }
      out[name] = positions;
    }
    return out;
  }

  producer(): EventProducer {
    this.checkOpen();
    const producer = new EmbeddedProducer(this);
    this.producers.add(producer);
    return producer;
  }

  /** Stops every consumer (each finishes its batch), then fails the producers still waiting for room. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    this.closed = true;
    for (const topic of this.topics.values()) topic.close();
    await Promise.all([...this.producers].map((p) => p.close().catch(() => undefined)));
  }

  hasRoomFor(records: readonly OutgoingRecord[]): boolean {
    let last: string | undefined;
    for (const record of records) {
      if (record.topic === last) continue;
      last = record.topic;
      const topic = this.topics.get(record.topic);
      if (topic && !topic.hasRoom()) return false;
    }
    return true;
  }

  nextRoomChange(records: readonly OutgoingRecord[]): Promise<void> {
    const full = records.map((r) => this.topics.get(r.topic)).find((t) => t !== undefined && !t.hasRoom());
    return full ? full.nextRoomChange() : Promise.resolve();
  }

  append(records: readonly OutgoingRecord[]): void {
    this.checkOpen();
    for (const record of records) {
      validateRecord(record);
      this.checkSize(record);
    }
    const timestampMs = Date.now();
    const touched = new Set<Topic>();
    for (const record of records) {
      const topic = this.topic(record.topic);
      topic.append(toKey(record.key), record.value, toHeaders(record.headers), timestampMs);
      touched.add(topic);
    }
    for (const topic of touched) topic.notifyReaders();
  }

  private topic(name: string, partitions = this.config.topics.partitions): Topic {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = new Topic(name, partitions, this.config.embedded, this.logger);
      this.topics.set(name, topic);
    }
    return topic;
  }

  private checkSize(record: OutgoingRecord): void {
    const limit = this.maxMessageBytes.get(record.topic) ?? this.config.topics.maxMessageBytes;
    const size = recordBatchBytes(record);
    if (size > limit) {
      throw new BadInputError(
        'MESSAGE_TOO_LARGE',
        `record for ${record.topic} is ${size} bytes as a record batch; the topic's max.message.bytes is ${limit}`,
      );
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new FatalError('EVENT_LOG_CLOSED', 'the embedded event log is closed');
  }
}

function validateConsumerOptions(options: ConsumerOptions): void {
  if (!options.groupId)
    throw new FatalError('INVALID_CONSUMER_OPTIONS', 'groupId must be a non-empty string');
  if (options.topics.length === 0 || options.topics.some((t) => !t)) {
    throw new FatalError(
      'INVALID_CONSUMER_OPTIONS',
      `group ${options.groupId}: topics must be non-empty names`,
    );
  }
  if (!Number.isInteger(options.maxBatchRecords) || options.maxBatchRecords < 1) {
    throw new FatalError(
      'INVALID_CONSUMER_OPTIONS',
      `group ${options.groupId}: maxBatchRecords must be a positive integer`,
    );
  }
}

function validateRecord(record: OutgoingRecord): void {
  if (typeof record.topic !== 'string' || record.topic.length === 0) {
    throw new BadInputError('INVALID_RECORD', 'record without a topic');
  }
  if (!Buffer.isBuffer(record.value))
    throw new BadInputError('INVALID_RECORD', `record for ${record.topic}: value is not a Buffer`);
}

/**
 * An upper bound of the size of a one-record Kafka record batch (v2): the 61-byte batch header, then the
 * record's varints (5 bytes each at most), attributes, key, value, and each header's name and value with
 * their varint lengths. What a broker compares with `max.message.bytes` (uncompressed).
 */
export function recordBatchBytes(record: OutgoingRecord): number {
  const VARINT = 5;
  let size = 61 + 1 + 6 * VARINT + byteLength(record.key) + record.value.length;
  for (const [name, value] of Object.entries(record.headers ?? {})) size += 2 * VARINT + Buffer.byteLength(name) + byteLength(value);
  return size;
}

function byteLength(value: string | Buffer | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

function toKey(key: string | Buffer | null): Buffer | null {
  if (key === null || key === undefined) return null;
  return typeof key === 'string' ? Buffer.from(key) : key;
}

function toHeaders(headers: OutgoingRecord['headers']): Headers {
  if (!headers) return EMPTY_HEADERS;
  const out: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(headers))
    out[name] = typeof value === 'string' ? Buffer.from(value) : value;
  return out;
}
