import type { Codecs } from '../eventlog/codec/avro.ts';
import type { Framing } from '../eventlog/codec/framing.ts';
import type { ConsumedBatch, EventConsumer, EventLog, EventProducer, OutgoingRecord } from '../eventlog/port.ts';
import { errorCode, errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { VectorStore } from '../store/port.ts';
import type { PipelineInstruments } from './instruments.ts';
import { deadLetterRecord, recommendationRecord } from './outputs.ts';
import type { BatchProcessor } from './processor.ts';

/**
 * Runs the pipeline on an event log: consumes the interactions topic in batches, processes each batch, sends
 * its recommendations and dead letters, and only then lets the consumer commit (at-least-once end to end).
 * A second consumer folds the items topic (catalogue) into the store.
 *
 * Backpressure is structural: a partition's next batch is fetched only after the previous one's outputs
 * are acknowledged, so a slow store, scorer or producer slows consumption and memory stays bounded.
 *
 * Lifecycle: created → running → draining → stopped. `stop()` is idempotent and follows a fixed order:
 * not ready → stop fetching and finish the batch in flight → commit → leave the group → flush and close
 * the producer → flush the store.
 */

export interface RunnerTopics {
  readonly interactions: string;
  readonly items: string;
  readonly recommendations: string;
  readonly deadLetters: string;
}

export interface RunnerDeps {
  readonly log: EventLog;
  readonly processor: BatchProcessor;
  readonly store: VectorStore;
  readonly codecs: Codecs;
  readonly framing: Framing;
  readonly topics: RunnerTopics;
  readonly instruments: PipelineInstruments;
  readonly logger: Logger;
  readonly groupId: string;
  readonly maxBatchRecords: number;
  readonly fromBeginning: boolean;
}

export type RunnerState = 'created' | 'running' | 'draining' | 'stopped';

export class PipelineRunner {
  private state: RunnerState = 'created';
  private producer: EventProducer | null = null;
  private consumers: EventConsumer[] = [];
  private runs: Promise<void>[] = [];
  private stopping: Promise<void> | null = null;
  /** Records whose outputs were acknowledged since start. */
  processedRecords = 0;

  constructor(private readonly deps: RunnerDeps) {}

  get status(): RunnerState {
    return this.state;
  }

  /** True while the runner consumes; readiness probes read this. */
  get ready(): boolean {
    return this.state === 'running';
  }

  /** Starts consuming; resolves once consumers are running. `done()` resolves when they stop. */
  async start(): Promise<void> {
    if (this.state !== 'created') throw new Error(`runner cannot start from state ${this.state}`);
    const d = this.deps;
    this.producer = d.log.producer();
    const interactions = d.log.consumer({
      groupId: d.groupId,
      topics: [d.topics.interactions],
      fromBeginning: d.fromBeginning,
      maxBatchRecords: d.maxBatchRecords,
    });
    const items = d.log.consumer({
      groupId: `${d.groupId}.items`,
      topics: [d.topics.items],
      fromBeginning: true,
      maxBatchRecords: d.maxBatchRecords,
    });
    this.consumers = [interactions, items];
    this.state = 'running';
    this.runs = [
      this.supervise('interactions', interactions.run((batch) => this.handleInteractions(batch))),
      this.supervise('items', items.run((batch) => this.handleItems(batch))),
    ];
  }

  /** Resolves when every consumer has stopped; rejects if one failed fatally. */
  async done(): Promise<void> {
    await Promise.all(this.runs);
  }

  pause(): void {
    for (const c of this.consumers) c.pause();
  }

  resume(): void {
    for (const c of this.consumers) c.resume();
  }

  async lag(): Promise<number> {
    const lags = await Promise.all(this.consumers.slice(0, 1).map((c) => c.lag()));
    let total = 0;
    for (const partition of lags.flat()) {
      total += partition.lag;
      this.deps.instruments.consumerLag(partition.topic, partition.partition, partition.lag);
    }
    return total;
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'created') {
      this.state = 'stopped';
      return;
    }
    this.state = 'draining';
    await Promise.all(this.consumers.map((c) => c.stop()));
    await this.producer?.close();
    await this.deps.store.flush();
    this.state = 'stopped';
  }

  private async supervise(name: string, run: Promise<void>): Promise<void> {
    try {
      await run;
    } catch (err) {
      this.deps.logger.fatal({ consumer: name, code: errorCode(err), err: errorMessage(err) }, 'consumer failed');
      throw err;
    }
  }

  private async handleInteractions(batch: ConsumedBatch): Promise<void> {
    const d = this.deps;
    d.instruments.inFlight(batch.records.length);
    const started = performance.now();
    const out = await d.processor.process(batch.records);
    const records: OutgoingRecord[] = [];
    for (const rec of out.recommendations) {
      records.push(await recommendationRecord(rec, d.topics.recommendations, d.codecs, d.framing));
    }
    for (const letter of out.deadLetters) {
      records.push(await deadLetterRecord(letter, d.topics.deadLetters, d.codecs, d.framing));
      d.logger.warn({ topic: letter.source.topic, partition: letter.source.partition, offset: letter.source.offset, code: letter.code }, 'dead-lettered');
    }
    const publishStart = performance.now();
    if (records.length > 0) await this.producer!.send(records);
    const ackedAt = Date.now();
    d.instruments.stageDuration('publish', (performance.now() - publishStart) / 1000);
    for (const record of batch.records) d.instruments.endToEndLatency(Math.max(0, ackedAt - record.timestampMs) / 1000);
    d.instruments.batchProcessed(batch.records.length, (performance.now() - started) / 1000);
    d.instruments.inFlight(0);
    this.processedRecords += batch.records.length;
  }

  private async handleItems(batch: ConsumedBatch): Promise<void> {
    const d = this.deps;
    const items = [];
    const letters: OutgoingRecord[] = [];
    for (const record of batch.records) {
      try {
        items.push(await d.framing.decode(d.codecs.item, record.value, record.headers));
      } catch (err) {
        const letter = { code: errorCode(err), reason: errorMessage(err), source: record, key: record.key, payload: record.value, failedAtMs: Date.now() };
        letters.push(await deadLetterRecord(letter, d.topics.deadLetters, d.codecs, d.framing));
        d.instruments.deadLettered(letter.code);
      }
    }
    if (items.length) await d.store.putItemMetadata(items.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
    if (letters.length) await this.producer!.send(letters);
  }
}
