import type { Codecs } from '../eventlog/codec/avro.ts';
import type { Framing } from '../eventlog/codec/framing.ts';
import type { ConsumedBatch, EventConsumer, EventLog, EventProducer, OutgoingRecord } from '../eventlog/port.ts';
import { BadInputError, errorCode, errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { VectorStore } from '../store/port.ts';
import type { ItemDeltaWriter } from '../stages/item-deltas/index.ts';
import type { PipelineInstruments } from './instruments.ts';
import { decodeItemDeltas, itemDeltasRecord } from './item-delta-records.ts';
import { deadLetterRecord, recommendationRecord, teacherCaseRecord } from './outputs.ts';
import type { BatchProcessor } from './processor.ts';

/**
 * Runs the pipeline on an event log: consumes the interactions topic in batches, processes each batch, sends
 * its recommendations, sampled teacher cases and dead letters, and only then lets the consumer commit (at-least-once end to end).
 * A second consumer folds the items topic (catalogue) into the store. With an `itemDeltaWriter`
 * (`store.itemWrites = routed`), the processor's item deltas go out with the other outputs to the item-keyed
 * item-deltas topic, and a third consumer (group `${groupId}.item-deltas`) applies them: one writer per item
 * across all instances (see `stages/item-deltas`). Item state in the store is then behind by that consumer's lag.
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
  /** The side stream: cases sampled for the teacher. */
  readonly teacherCases: string;
  /** Item deltas keyed by item (`store.itemWrites = routed`). */
  readonly itemDeltas: string;
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
  /** Set = routed item writes: consume the item-deltas topic and apply it with this writer. */
  readonly itemDeltaWriter?: ItemDeltaWriter | null;
}

export type RunnerState = 'created' | 'running' | 'draining' | 'stopped';

export class PipelineRunner {
  private state: RunnerState = 'created';
  private producer: EventProducer | null = null;
  private consumers: EventConsumer[] = [];
  private itemDeltaConsumer: EventConsumer | null = null;
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
    const writer = d.itemDeltaWriter;
    if (writer) {
      // Always from the beginning: a new group that started at the log end could skip deltas produced
      // between its creation and its first fetch. (A renamed group replays the retained deltas.)
      this.itemDeltaConsumer = d.log.consumer({
        groupId: `${d.groupId}.item-deltas`,
        topics: [d.topics.itemDeltas],
        fromBeginning: true,
        maxBatchRecords: d.maxBatchRecords,
      });
      this.consumers.push(this.itemDeltaConsumer);
      this.runs.push(this.supervise('item-deltas', this.itemDeltaConsumer.run((batch) => this.handleItemDeltas(batch, writer))));
    }
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

  /** Interaction records not yet committed; also reports the item-deltas consumer's lag to the gauges. */
  async lag(): Promise<number> {
    const lags = await Promise.all(this.consumers.slice(0, 1).map((c) => c.lag()));
    let total = 0;
    for (const partition of lags.flat()) {
      total += partition.lag;
      this.deps.instruments.consumerLag(partition.topic, partition.partition, partition.lag);
    }
    await this.itemDeltaLag();
    return total;
  }

  /**
   * Item-deltas records this instance's writer has not committed (0 when item writes are direct): how far the
   * store's item state is behind what the instance has learned.
   */
  async itemDeltaLag(): Promise<number> {
    if (!this.itemDeltaConsumer) return 0;
    let total = 0;
    for (const partition of await this.itemDeltaConsumer.lag()) {
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
    for (const message of out.itemDeltas) {
      records.push(await itemDeltasRecord(message, d.topics.itemDeltas, d.codecs, d.framing));
    }
    for (const teacherCase of out.teacherCases) {
      records.push(await teacherCaseRecord(teacherCase, d.topics.teacherCases, d.codecs, d.framing));
    }
    for (const letter of out.deadLetters) {
      records.push(await deadLetterRecord(letter, d.topics.deadLetters, d.codecs, d.framing));
      d.logger.warn({ topic: letter.source.topic, partition: letter.source.partition, offset: letter.source.offset, code: letter.code }, 'dead-lettered');
    }
    const publishStart = performance.now();
    try {
      if (records.length > 0) await this.producer!.send(records);
    } catch (err) {
      d.instruments.stageFailed('publish', errorCode(err));
      throw err;
    }
    const ackedAt = Date.now();
    d.instruments.stageDuration('publish', (performance.now() - publishStart) / 1000);
    for (const record of batch.records) d.instruments.endToEndLatency(Math.max(0, ackedAt - record.timestampMs) / 1000);
    for (const eventMs of out.eventTimesMs) d.instruments.eventLatency(Math.max(0, ackedAt - eventMs) / 1000);
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

  /**
   * One batch of one item-deltas partition: decode and check every record (bad ones go to the DLQ), then the
   * writer de-duplicates, merges and applies them; the batch commits only after the store has them.
   */
  private async handleItemDeltas(batch: ConsumedBatch, writer: ItemDeltaWriter): Promise<void> {
    const d = this.deps;
    const messages = [];
    const letters: OutgoingRecord[] = [];
    for (const record of batch.records) {
      try {
        const message = await decodeItemDeltas(record, d.codecs, d.framing);
        writer.check(message);
        messages.push(message);
      } catch (err) {
        if (!(err instanceof BadInputError)) throw err;
        const letter = { code: err.code, reason: err.message, source: record, key: record.key, payload: record.value, failedAtMs: Date.now() };
        letters.push(await deadLetterRecord(letter, d.topics.deadLetters, d.codecs, d.framing));
        d.instruments.deadLettered(letter.code);
        d.logger.warn({ topic: record.topic, partition: record.partition, offset: record.offset, code: err.code }, 'dead-lettered');
      }
    }
    const write = await writer.write(messages);
    if (write.duplicates > 0) {
      d.logger.info({ topic: batch.topic, partition: batch.partition, duplicates: write.duplicates }, 'skipped repeated item deltas');
    }
    if (letters.length) await this.producer!.send(letters);
  }
}
