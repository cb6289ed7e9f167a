import kafkajs from 'kafkajs';
import type { Config } from '../../config/schema.ts';
import { FatalError } from '../../errors/index.ts';
import { withRetry } from '../../util/retry.ts';
import type { Logger } from '../../logging/logger.ts';
import type {
  ConsumerOptions,
  EventConsumer,
  EventLog,
  EventProducer,
  StartPositions,
  StartQuery,
  TopicSpec,
  TransactionalProducer,
} from '../port.ts';
import { toKafkaJsConfig, toProducerConfig, toTransactionalProducerConfig, type KafkaSettings } from './config.ts';
import { KafkaEventConsumer } from './consumer.ts';
import { classifyKafkaError } from './errors.ts';
import { KafkaEventProducer } from './producer.ts';
import { KafkaTransactionalProducer } from './transactions.ts';

/**
 * The event log on Kafka through kafkajs. Clients connect lazily: creating the log or a consumer touches no
 * broker. One admin client per log serves `ensureTopics` and every consumer's `lag()`.
 */
export function createKafkaEventLog(config: Config['eventLog'], logger: Logger): EventLog {
  const log = logger.child({ component: 'eventlog-kafka' });
  if (config.kafka.sasl && !config.kafka.ssl) {
    log.warn(
      { code: 'SASL_WITHOUT_TLS' },
      'SASL credentials are sent without TLS (eventLog.kafka.ssl is false)',
    );
  }
  // kafkajs logs through its own child of the root logger (`component: kafkajs`), ours through `log`.
  return new KafkaEventLog(config.kafka, log, logger);
}

class KafkaEventLog implements EventLog {
  readonly kind = 'kafka' as const;
  /** Offsets are the cluster's: the same topic names mean the same records to every process. */
  readonly offsetsScope = 'kafka';
  private readonly kafka: kafkajs.Kafka;
  private adminClient: Promise<kafkajs.Admin> | null = null;
  private readonly consumers = new Set<KafkaEventConsumer>();
  private readonly producers = new Set<KafkaEventProducer | KafkaTransactionalProducer>();
  private closing: Promise<void> | null = null;

  constructor(
    private readonly settings: KafkaSettings,
    private readonly logger: Logger,
    rootLogger: Logger,
  ) {
    this.kafka = new kafkajs.Kafka(toKafkaJsConfig(settings, rootLogger));
  }

  /** Creates the missing topics with their partitions, replication and config; existing ones stay as they are. */
  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.checkOpen();
    // A fresh topic's metadata can lag its creation (UNKNOWN_TOPIC_OR_PARTITION while leaders are elected):
    // transient, so the whole check-and-create is retried; creating is idempotent.
    await withRetry(() => this.createMissingTopics(specs), this.settings.retry);
  }

  private async createMissingTopics(specs: readonly TopicSpec[]): Promise<void> {
    try {
      const admin = await this.admin();
      const existing = new Set(await admin.listTopics());
      const missing = specs.filter((spec) => !existing.has(spec.name));
      if (missing.length === 0) return;
      // A topic created concurrently by another instance makes kafkajs return false, not throw: fine here.
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.name,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configEntries: Object.entries(spec.config ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
      this.logger.info({ topics: missing.map((s) => s.name) }, 'created topics');
    } catch (err) {
      throw classifyKafkaError(err);
    }
  }

  consumer(options: ConsumerOptions): EventConsumer {
    this.checkOpen();
    if (!options.groupId || options.topics.length === 0 || !(options.maxBatchRecords >= 1)) {
      throw new FatalError(
        'INVALID_CONSUMER_OPTIONS',
        'groupId, topics and maxBatchRecords >= 1 are required',
      );
    }
    const consumer = new KafkaEventConsumer(
      { kafka: this.kafka, admin: () => this.admin(), settings: this.settings, logger: this.logger },
      options,
    );
    this.consumers.add(consumer);
    return consumer;
  }

  producer(): EventProducer {
    this.checkOpen();
    const producer = new KafkaEventProducer(this.kafka.producer(toProducerConfig(this.settings)));
    this.producers.add(producer);
    return producer;
  }

  /** With `exactlyOnce`: a producer of transactions, one transactional id per consumed partition (`transactions.ts`). */
  transactionalProducer(): TransactionalProducer | null {
    this.checkOpen();
    if (!this.settings.exactlyOnce) return null;
    const producer = new KafkaTransactionalProducer(
      (transactionalId) => this.kafka.producer(toTransactionalProducerConfig(this.settings, transactionalId)),
      this.logger,
    );
    this.producers.add(producer);
    return producer;
  }

  /**
   * The group's committed offset per partition of `query.topics`; where it has none, the low watermark
   * (`fromBeginning`) or the high one, as kafkajs's `fromBeginning` would start. A committed offset older than
   * the oldest record held counts as that record (the consumer would start there too). Retried as `ensureTopics`.
   */
  async startPositions(query: StartQuery): Promise<StartPositions> {
    this.checkOpen();
    return withRetry(() => this.fetchStartPositions(query), this.settings.retry);
  }

  private async fetchStartPositions(query: StartQuery): Promise<StartPositions> {
    try {
      const admin = await this.admin();
      const topics = [...new Set(query.topics)];
      const committed = await admin.fetchOffsets({ groupId: query.groupId, topics });
      const out: Record<string, Record<number, string>> = {};
      for (const topic of topics) {
        const ofTopic = committed.find((c) => c.topic === topic)?.partitions ?? [];
        const positions: Record<number, string> = {};
        for (const { partition, low, high } of await admin.fetchTopicOffsets(topic)) {
          const offset = BigInt(ofTopic.find((c) => c.partition === partition)?.offset ?? '-1');
          const start = offset >= 0n ? (offset < BigInt(low) ? BigInt(low) : offset) : query.fromBeginning ? BigInt(low) : BigInt(high);
          positions[partition] = start.toString();
        }
        out[topic] = positions;
      }
      return out;
    } catch (err) {
      throw classifyKafkaError(err);
    }
  }

  /** Stops the consumers (each commits its batch in flight), flushes and closes the producers, then the admin. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.consumers].map((c) => c.stop()));
      await Promise.all([...this.producers].map((p) => p.close()));
      const admin = this.adminClient;
      this.adminClient = null;
      if (admin) await admin.then((a) => a.disconnect()).catch(() => undefined);
    })();
    return this.closing;
  }

  private admin(): Promise<kafkajs.Admin> {
    // A lag refresh racing shutdown must not reconnect an admin that close() already let go of.
    if (this.closing) return Promise.reject(new FatalError('EVENT_LOG_CLOSED', 'the Kafka event log is closed'));
    if (!this.adminClient) {
      const admin = this.kafka.admin({ retry: { retries: this.settings.retry.retries } });
      const connected = admin.connect().then(() => admin);
      // Not remembered when it fails: the next call tries again.
      connected.catch(() => (this.adminClient = null));
      this.adminClient = connected;
    }
    return this.adminClient;
  }

  private checkOpen(): void {
    if (this.closing) throw new FatalError('EVENT_LOG_CLOSED', 'the Kafka event log is closed');
  }
}
