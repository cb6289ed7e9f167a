import type kafkajs from 'kafkajs';
import { FatalError, type StarstreamError } from '../../errors/index.ts';
import { errorMessage } from '../../errors/index.ts';
import type { Logger } from '../../logging/logger.ts';
import { backoffDelayMs, sleep, type RetryPolicy } from '../../util/retry.ts';
import type {
  BatchHandler,
  ConsumedBatch,
  ConsumerHealth,
  ConsumerOptions,
  EventConsumer,
  Headers,
  LogRecord,
  PartitionLag,
} from '../port.ts';
import type { KafkaSettings } from './config.ts';
import { toConsumerConfig } from './config.ts';
import { classifyKafkaError } from './errors.ts';
import { logRedelivery, refuseRun } from '../consumer-common.ts';

type State = 'idle' | 'running' | 'stopping' | 'stopped';

/** What a consumer needs from its log: a kafkajs client and the shared admin for lag. */
export interface KafkaConsumerDeps {
  readonly kafka: kafkajs.Kafka;
  admin(): Promise<kafkajs.Admin>;
  readonly settings: KafkaSettings;
  readonly logger: Logger;
}

/**
 * The port's consumer on a kafkajs consumer group.
 *
 * - Delivery: `eachBatch` with `eachBatchAutoResolve: false`. A fetched batch is handed over in chunks of at
 *   most `maxBatchRecords`; after the handler resolves, the chunk's last offset is resolved and committed at
 *   once (`autoCommitThreshold: 1` makes `commitOffsetsIfNecessary` commit every resolved offset). The rest of
 *   a fetched batch that was never handed over is simply not resolved; kafkajs fetches it again.
 * - Failure: a handler rejection is retried in place (same records, which start at the last committed offset)
 *   after a growing delay, heartbeating meanwhile; a `FatalError` stops the consumer and rejects `run()`.
 * - Long batches: a heartbeat every `heartbeatIntervalMs` while the handler runs, and between chunks.
 * - Rebalance: the chunk whose handler is running finishes; its commit is sent with the old generation, which
 *   the broker accepts until the rebalance completes; if refused, the chunk is abandoned uncommitted and its
 *   next owner gets it again (at-least-once). Chunks not yet handed over are abandoned when the partition is
 *   revoked (`isStale`) or the consumer stops.
 * - `stop()`: stop fetching, let the chunk in flight finish and commit, leave the group, disconnect. A retry
 *   wait in progress is cut short and its batch left uncommitted.
 * - `health()`: not fetching before the first group join, from a crash that kafkajs restarts until the next
 *   join (kafkajs logs "consumer crashed" and retries on its own, so `run()` never hears of it), and once failed
 *   or stopping. A fetch sent and not answered (FETCH_START without FETCH) is reported with its start time.
 */
export class KafkaEventConsumer implements EventConsumer {
  private state: State = 'idle';
  private paused = false;
  private consumer: kafkajs.Consumer | null = null;
  private starting: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | null = null;
  private fatal: StarstreamError | null = null;
  private assignment: Readonly<Record<string, readonly number[]>> | null = null;
  /** Joined the group at least once since run(): kafkajs fetches nothing before its first join. */
  private joined = false;
  /** Why kafkajs last crashed, while it restarts the consumer (cleared by the next join); null when it has not. */
  private crash: string | null = null;
  /** Per broker node, since when its fetches have gone unanswered (FETCH_START without a FETCH after it). */
  private readonly unanswered = new Map<number, number>();
  private readonly aborted = new AbortController();
  /** `options.startAt` once checked against the log (topic → partition → offset), less what was applied. */
  private readonly pendingStarts = new Map<string, Map<number, string>>();
  private settle: { resolve(): void; reject(err: Error): void } | null = null;
  private readonly redelivery: RetryPolicy;
  private readonly logger: Logger;

  constructor(
    private readonly deps: KafkaConsumerDeps,
    private readonly options: ConsumerOptions,
  ) {
    this.logger = deps.logger.child({ groupId: options.groupId });
    this.redelivery = {
      retries: Number.POSITIVE_INFINITY,
      initialDelayMs: deps.settings.redeliveryDelayMs,
      maxDelayMs: deps.settings.maxRedeliveryDelayMs,
      multiplier: 2,
      jitter: 0.2,
    };
  }

  run(handler: BatchHandler): Promise<void> {
    const refused = refuseRun(this.state, this.options.groupId);
    if (refused) return refused;
    this.state = 'running';
    const done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.starting = this.start(handler).catch((err: unknown) => this.failed(classifyKafkaError(err)));
    return done;
  }

  health(): ConsumerHealth {
    let notFetching: string | null = null;
    if (this.fatal) notFetching = `failed (${this.fatal.code})`;
    else if (this.state === 'idle') notFetching = 'not started';
    else if (this.state !== 'running') notFetching = this.state;
    else if (this.crash !== null) notFetching = `crashed, kafkajs restarts it (${this.crash})`;
    else if (!this.joined) notFetching = 'joining the consumer group';
    const since = [...this.unanswered.values()];
    return { notFetching, fetchUnansweredSinceMs: since.length > 0 ? Math.min(...since) : null };
  }

  pause(): void {
    this.paused = true;
    this.applyPause();
  }

  resume(): void {
    this.paused = false;
    this.applyPause();
  }

  async lag(): Promise<PartitionLag[]> {
    try {
      const admin = await this.deps.admin();
      const topics = [...new Set(this.options.topics)];
      const committed = await admin.fetchOffsets({ groupId: this.options.groupId, topics });
      const out: PartitionLag[] = [];
      for (const topic of topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        const assigned = this.assignment?.[topic];
        const ofTopic = committed.find((c) => c.topic === topic)?.partitions ?? [];
        for (const { partition, high, low } of ends) {
          if (this.assignment && !assigned?.includes(partition)) continue;
          const offset = BigInt(ofTopic.find((c) => c.partition === partition)?.offset ?? '-1');
          // No commit yet: the group starts at the log start or at its end, as fromBeginning says.
          const from = offset >= 0n ? offset : this.options.fromBeginning ? BigInt(low) : BigInt(high);
          out.push({ topic, partition, lag: Number(BigInt(high) - from) });
        }
      }
      return out;
    } catch (err) {
      throw classifyKafkaError(err);
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async start(handler: BatchHandler): Promise<void> {
    const consumer = this.deps.kafka.consumer(toConsumerConfig(this.deps.settings, this.options.groupId));
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      // A join is an answer from the coordinator: whatever crashed is over, and fetches start afresh.
      this.joined = true;
      this.crash = null;
      this.unanswered.clear();
      this.assignment = payload.memberAssignment;
      this.logger.info({ assignment: payload.memberAssignment }, 'joined the consumer group');
      this.seekStartPositions(consumer, payload.memberAssignment);
      // Eager protocol: a member rejoins after its batch in flight has finished, and a join completes only once
      // every member has rejoined, so the previous owners' writes are done when the store hears of it.
      this.options.onPartitionsAssigned?.();
    });
    // Only the time of the first unanswered fetch per node is kept: a fetch that fails is retried by kafkajs
    // (FETCH_START again) without a FETCH, and those retries must not make the wait look fresh.
    consumer.on(consumer.events.FETCH_START, ({ payload }) => {
      if (!this.unanswered.has(payload.nodeId)) this.unanswered.set(payload.nodeId, Date.now());
    });
    consumer.on(consumer.events.FETCH, ({ payload }) => void this.unanswered.delete(payload.nodeId));
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) {
        const code = classifyKafkaError(payload.error).code;
        // Not fetching until kafkajs has restarted the consumer and it has joined the group again.
        this.crash = code;
        this.logger.warn({ code, reason: payload.error.message }, 'consumer crashed; kafkajs restarts it');
      } else {
        this.failed(classifyKafkaError(payload.error));
      }
    });
    await consumer.connect();
    await this.checkStartPositions();
    await consumer.subscribe({ topics: [...this.options.topics], fromBeginning: this.options.fromBeginning });
    if (this.state !== 'running') return;
    await consumer.run({
      autoCommit: true,
      autoCommitThreshold: 1,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.eachBatch(payload, handler),
    });
    if (this.paused) this.applyPause();
  }

  /**
   * `options.startAt` against the log's offsets, before the group is joined: past a partition's high watermark
   * is fatal (the positions belong to another log, a recreated topic say); before its low watermark starts at
   * the low one, warned (retention deleted the records between).
   */
  private async checkStartPositions(): Promise<void> {
    const startAt = this.options.startAt;
    if (!startAt) return;
    const admin = await this.deps.admin();
    for (const topic of new Set(this.options.topics)) {
      const wanted = Object.entries(startAt[topic] ?? {});
      if (wanted.length === 0) continue;
      const bounds = await admin.fetchTopicOffsets(topic);
      const pending = new Map<number, string>();
      for (const [key, value] of wanted) {
        const partition = Number(key);
        const bound = bounds.find((b) => b.partition === partition);
        let offset = /^\d+$/.test(value) ? BigInt(value) : -1n;
        if (!bound || offset < 0n || offset > BigInt(bound.high)) {
          throw new FatalError(
            'START_OFFSET_OUT_OF_RANGE',
            `group ${this.options.groupId}: start position ${value} for ${topic} partition ${key} is beyond what the log holds ` +
              `(${bound ? `high watermark ${bound.high}` : 'no such partition'}); the positions belong to another log`,
          );
        }
        if (offset < BigInt(bound.low)) {
          this.logger.warn(
            { topic, partition, offset: value, code: 'START_OFFSET_TRUNCATED', oldest: bound.low },
            'start position is older than the oldest record held; starting there (the records between are gone)',
          );
          offset = BigInt(bound.low);
        }
        pending.set(partition, offset.toString());
      }
      this.pendingStarts.set(topic, pending);
    }
  }

  /**
   * Seeks the newly assigned partitions that have a start position not yet applied. kafkajs applies a seek
   * at the next fetch of that partition, drops whatever a fetch already in flight returns for it, and (with
   * auto-commit) commits the offset for the group, so a later rebalance starts there too.
   */
  private seekStartPositions(consumer: kafkajs.Consumer, assignment: Readonly<Record<string, readonly number[]>>): void {
    for (const [topic, partitions] of Object.entries(assignment)) {
      const pending = this.pendingStarts.get(topic);
      if (!pending) continue;
      for (const partition of partitions) {
        const offset = pending.get(partition);
        if (offset === undefined) continue;
        pending.delete(partition);
        consumer.seek({ topic, partition, offset });
        this.logger.info({ topic, partition, offset }, 'starting at the restored checkpoint\'s position');
      }
    }
  }

  private async eachBatch(payload: kafkajs.EachBatchPayload, handler: BatchHandler): Promise<void> {
    const { batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale } = payload;
    const max = this.options.maxBatchRecords;
    const live = (): boolean => this.state === 'running' && isRunning() && !isStale();
    for (let start = 0; start < batch.messages.length; start += max) {
      if (!live() || this.paused) return;
      const chunk = batch.messages.slice(start, start + max);
      const consumed: ConsumedBatch = {
        topic: batch.topic,
        partition: batch.partition,
        records: chunk.map((m) => toLogRecord(batch.topic, batch.partition, m)),
        highWatermark: batch.highWatermark,
      };
      const heartbeatError = await this.handle(consumed, handler, heartbeat, live);
      if (heartbeatError === undefined) return;
      resolveOffset(chunk[chunk.length - 1]!.offset);
      await commitOffsetsIfNecessary();
      // A heartbeat that failed during the handler (a rebalance, mostly) is kafkajs's to act on, after the commit.
      if (heartbeatError) throw heartbeatError;
      await heartbeat();
    }
  }

  /**
   * Runs the handler until it resolves, heartbeating meanwhile. Returns the error of a heartbeat that failed
   * meanwhile (null when none), or undefined when the chunk is abandoned: fatal error, stop, revoked partition.
   */
  private async handle(
    batch: ConsumedBatch,
    handler: BatchHandler,
    heartbeat: () => Promise<void>,
    live: () => boolean,
  ): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      let heartbeatError: unknown = null;
      const beat = setInterval(() => {
        heartbeat().catch((err: unknown) => (heartbeatError ??= err));
      }, this.deps.settings.heartbeatIntervalMs);
      let waitMs: number;
      try {
        await handler(batch);
        return heartbeatError;
      } catch (err) {
        if (err instanceof FatalError) {
          this.failed(err);
          return undefined;
        }
        waitMs = backoffDelayMs(this.redelivery, Math.min(attempt, 30));
        logRedelivery(this.logger, batch, err, attempt, waitMs);
        if (heartbeatError) throw heartbeatError;
      } finally {
        clearInterval(beat);
      }
      if (!(await this.waitToRedeliver(waitMs, heartbeat, live))) return undefined;
    }
  }

  /** Waits before a redelivery in heartbeat-sized steps; false when the chunk should be abandoned. */
  private async waitToRedeliver(
    waitMs: number,
    heartbeat: () => Promise<void>,
    live: () => boolean,
  ): Promise<boolean> {
    const until = Date.now() + waitMs;
    while (live() && Date.now() < until) {
      await sleep(Math.min(until - Date.now(), this.deps.settings.heartbeatIntervalMs), this.aborted.signal);
      if (live()) await heartbeat();
    }
    return live();
  }

  private applyPause(): void {
    if (!this.consumer || this.state !== 'running') return;
    const topics = [...new Set(this.options.topics)].map((topic) => ({ topic }));
    try {
      if (this.paused) this.consumer.pause(topics);
      else this.consumer.resume(topics);
    } catch {
      // Not running yet (kafkajs refuses before run()); start() applies the flag once it runs.
    }
  }

  private failed(err: StarstreamError): void {
    if (this.fatal) return;
    this.fatal = err;
    this.logger.error({ code: err.code, err }, 'consumer failed; stopping');
    void this.stop();
  }

  private async shutdown(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    this.aborted.abort();
    if (wasRunning && this.consumer) {
      await this.starting;
      // kafkajs's stop() stops the fetchers, waits for the batch in flight (which commits its chunk), commits
      // what was resolved and leaves the group; disconnect() then closes the connections.
      await this.consumer
        .stop()
        .catch((err: unknown) => this.logger.warn({ reason: errorMessage(err) }, 'stop failed'));
      await this.consumer
        .disconnect()
        .catch((err: unknown) => this.logger.warn({ reason: errorMessage(err) }, 'disconnect failed'));
    }
    this.state = 'stopped';
    this.assignment = null;
    if (this.fatal) this.settle?.reject(this.fatal);
    else this.settle?.resolve();
  }
}

function toLogRecord(topic: string, partition: number, message: kafkajs.KafkaMessage): LogRecord {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key ?? null,
    // A tombstone (null value, on compacted topics) arrives as an empty buffer, flagged so that a dead letter
    // can tell it from an empty value.
    value: message.value ?? Buffer.alloc(0),
    ...(message.value === null ? { valueIsNull: true } : {}),
    headers: toHeaders(message.headers),
    timestampMs: Number(message.timestamp),
  };
}

function toHeaders(headers: kafkajs.IHeaders | undefined): Headers {
  const out: Record<string, Buffer> = {};
  if (!headers) return out;
  for (const [name, value] of Object.entries(headers)) {
    // Kafka allows a header name twice; the port keeps the last value.
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) out[name] = typeof last === 'string' ? Buffer.from(last) : last;
  }
  return out;
}
