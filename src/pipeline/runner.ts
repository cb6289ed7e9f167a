import type { Codecs } from '../eventlog/codec/avro.ts';
import type { Framing } from '../eventlog/codec/framing.ts';
import type {
  BatchHandler,
  ConsumedBatch,
  EventConsumer,
  EventLog,
  EventProducer,
  OutgoingRecord,
  StartPositions,
  StartQuery,
  TransactionalProducer,
} from '../eventlog/port.ts';
import { BadInputError, errorCode, errorMessage } from '../errors/index.ts';
import { escalate, toDeadLetter } from '../stages/ingest/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { VectorStore } from '../store/port.ts';
import type { ItemDeltaWriter } from '../stages/item-deltas/index.ts';
import { BatchWatch, type StuckBatch } from './batch-watch.ts';
import type { PipelineInstruments } from './instruments.ts';
import { decodeItemDeltas, itemDeltasRecord } from './item-delta-records.ts';
import { deadLetterRecord, recommendationRecord, teacherCaseRecord } from './outputs.ts';
import type { BatchOutput, BatchProcessor } from './processor.ts';

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
 * the producer → the last checkpoint (with a `checkpointer`), else flush the store.
 *
 * Checkpoints (`checkpointer`, the embedded store with a snapshot path): the runner tracks, per topic and
 * partition of all its consumers, the next offset after the last batch whose handler succeeded. After a batch,
 * when one is due, it takes one where no handler is in flight: new batches wait at a gate while the ones in
 * flight end, the state is copied with those positions, and the gate opens (the write goes on in the
 * background). Not while a partition's batch has failed and waits for redelivery (its effects may be half in
 * the store): the gate opens and a later batch tries again. Consumers start at the checkpoint's positions
 * (`ConsumerOptions.startAt`); with none to resume from, `start()` first writes one of the state as it is at
 * the positions the consumers would start from (`EventLog.startPositions`), and starts them there.
 *
 * Exactly-once outputs (`eventLog.kafka.exactlyOnce`, where the log has a `transactionalProducer`): a batch's
 * outputs, of any consumer, go out in one transaction with the batch's consumed offset, so a reader with
 * read_committed sees them once, together with the commit; a failed transaction is aborted and the batch
 * redelivered, and nothing of the failed attempt is visible. (The consumer still commits the same offset after
 * the handler: a repeat of what the transaction committed.) A batch with no outputs is committed by the
 * consumer alone.
 *
 * Learning moves with the outputs: `process(…, { settleLater: true })` leaves the batch's learning open (on a
 * store with live batches) until its outputs are published, then commits it; a failed publish (or an aborted
 * transaction) rolls it back, so the redelivered batch is learned once and, learning being deterministic,
 * produces the same recommendations. A durable tier (Qdrant) is written inside `process()`, before the outputs
 * are sent, and its states carry the source positions they hold: a batch written and then not committed (a
 * crash) is redelivered and its learning skipped per user and item (`LiveBatch.learned`); its events are
 * answered again (at-least-once). Stores read through `StoreView`
 * (routed item writes) still commit inside `process()`.
 *
 * Readiness (`health()`) is more than the lifecycle: running, and every consumer fetching (none failed,
 * crashed and restarting, or waiting on a fetch the log does not answer for longer than `stuckBatchMs`), and
 * no batch stuck, i.e. failing again and again or in its handler, for longer than `stuckBatchMs`.
 */

/** Default of `pipeline.stuckBatchMs`. */
export const DEFAULT_STUCK_BATCH_MS = 60_000;

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
  /**
   * Original bytes one dead letter carries (`eventLog.topics.deadLetterMaxBytes`); beyond, it is truncated.
   * @default DEFAULT_DEAD_LETTER_MAX_BYTES
   */
  readonly deadLetterMaxBytes?: number;
  /**
   * A batch failing (or in its handler) this long, or a fetch unanswered this long, makes the runner not
   * ready (`pipeline.stuckBatchMs`). Keep it above the redelivery ceiling (`eventLog.*.maxRedeliveryDelayMs`).
   * @default DEFAULT_STUCK_BATCH_MS
   */
  readonly stuckBatchMs?: number;
  /** Epoch ms, as `Date.now()` (the default); tests pass one they move by hand. */
  readonly clock?: () => number;
  /** Checkpoints of the store's state with the positions it reflects (`store/embedded/checkpoint.ts`); null = none. */
  readonly checkpointer?: Checkpointer | null;
}

/** What the runner needs of a checkpointer (`EmbeddedCheckpointer`). */
export interface Checkpointer {
  /** Where the consumers start (a restored checkpoint's positions on this log, or `begin`'s); null = none yet. */
  readonly startAt: StartPositions | null;
  /** Writes the first checkpoint (the state as it is, at `positions`) durably, before anything is consumed. */
  begin(positions: StartPositions): Promise<void>;
  /** Whether a checkpoint is due `batches` batches after the last one (and none is being written). */
  due(batches: number): boolean;
  /** Copies the state as of `positions` now (no batch in flight) and writes it in the background; never throws. */
  take(positions: StartPositions): void;
  /** The last checkpoint, after the consumers stopped (null: none, only wait for a write in flight); rejects when it cannot be written. */
  close(positions: StartPositions | null): Promise<void>;
}

export type RunnerState = 'created' | 'running' | 'draining' | 'stopped';

/** Names of the runner's consumers, in logs, readiness reasons and the `consumer` metric label. */
export type ConsumerName = 'interactions' | 'items' | 'item-deltas';

const NOT_RUNNING: Readonly<Record<Exclude<RunnerState, 'running'>, string>> = {
  created: 'runner not started',
  draining: 'runner draining (shutting down)',
  stopped: 'runner stopped',
};

export interface RunnerHealth {
  readonly ready: boolean;
  /** Why not ready, one line per cause; empty when ready. */
  readonly reasons: readonly string[];
  /** The batch stuck longest, if any. */
  readonly stuck: StuckBatch | null;
}

export class PipelineRunner {
  private state: RunnerState = 'created';
  private producer: EventProducer | null = null;
  /** Set with exactly-once outputs: every batch's outputs go out with its offsets through it. */
  private transactions: TransactionalProducer | null = null;
  private consumers: EventConsumer[] = [];
  private readonly named = new Map<ConsumerName, EventConsumer>();
  private itemDeltaConsumer: EventConsumer | null = null;
  private runs: Promise<void>[] = [];
  private stopping: Promise<void> | null = null;
  /** The first consumer that failed fatally, and with which code (readiness says so until the process ends). */
  private failure: string | null = null;
  private readonly watch: BatchWatch;
  private readonly stuckBatchMs: number;
  private readonly clock: () => number;
  /** Records whose outputs were acknowledged since start. */
  processedRecords = 0;
  /** Per topic and partition, the next offset after the last batch handled (what a checkpoint records). */
  private readonly positions = new Map<string, Map<number, string>>();
  /** Handlers in flight (all consumers), partitions whose last batch failed, batches since the last checkpoint. */
  private handling = 0;
  private readonly unsettled = new Set<string>();
  private batchesSinceCheckpoint = 0;
  /** Closed while a checkpoint waits for the handlers in flight: new batches wait on it. */
  private gate: { readonly opened: Promise<void>; open(): void } | null = null;

  constructor(private readonly deps: RunnerDeps) {
    this.stuckBatchMs = deps.stuckBatchMs ?? DEFAULT_STUCK_BATCH_MS;
    this.clock = deps.clock ?? Date.now;
    this.watch = new BatchWatch(this.stuckBatchMs, this.clock);
  }

  get status(): RunnerState {
    return this.state;
  }

  /** True while the runner consumes and nothing is stuck (`health()`); readiness probes read this. */
  get ready(): boolean {
    return this.health().ready;
  }

  /** Whether the runner is consuming, and if not, why; also refreshes the failed-attempts gauges. */
  health(): RunnerHealth {
    const reasons: string[] = [];
    const now = this.clock();
    if (this.state !== 'running') reasons.push(NOT_RUNNING[this.state]);
    if (this.failure !== null) reasons.push(this.failure);
    if (this.state === 'running') {
      for (const [name, consumer] of this.named) {
        const h = consumer.health();
        if (h.notFetching !== null) reasons.push(`${name} consumer not fetching: ${h.notFetching}`);
        else if (h.fetchUnansweredSinceMs !== null && now - h.fetchUnansweredSinceMs > this.stuckBatchMs) {
          reasons.push(`${name} consumer not fetching: the log has not answered a fetch for ${now - h.fetchUnansweredSinceMs} ms`);
        }
      }
    }
    const stuck = this.watch.stuck();
    if (stuck) {
      reasons.push(
        `${stuck.consumer} batch stuck for ${now - stuck.sinceMs} ms (pipeline.stuckBatchMs ${this.stuckBatchMs}): ` +
          `${stuck.topic} partition ${stuck.partition} from offset ${stuck.offset}, ${stuck.failures} failed attempts in a row`,
      );
    }
    this.reportFailures();
    return { ready: reasons.length === 0, reasons, stuck };
  }

  /** Starts consuming; resolves once consumers are running. `done()` resolves when they stop. */
  async start(): Promise<void> {
    if (this.state !== 'created') throw new Error(`runner cannot start from state ${this.state}`);
    const d = this.deps;
    const writer = d.itemDeltaWriter;
    const queries: StartQuery[] = [
      { groupId: d.groupId, topics: [d.topics.interactions], fromBeginning: d.fromBeginning },
      { groupId: `${d.groupId}.items`, topics: [d.topics.items], fromBeginning: true },
      // Always from the beginning: a new group that started at the log end could skip deltas produced
      // between its creation and its first fetch. (A renamed group replays the retained deltas.)
      ...(writer ? [{ groupId: `${d.groupId}.item-deltas`, topics: [d.topics.itemDeltas], fromBeginning: true }] : []),
    ];
    const startAt = await this.startAt(queries);
    if (this.state !== 'created') return;
    this.producer = d.log.producer();
    this.transactions = d.log.transactionalProducer?.() ?? null;
    // Users are owned by interactions partition (and, with direct item writes, so are the items this instance
    // writes): a store that caches owned state must re-read it when a partition arrives.
    const ownershipChanged = () => d.store.ownershipChanged?.();
    const interactions = d.log.consumer({
      ...queries[0]!,
      maxBatchRecords: d.maxBatchRecords,
      onPartitionsAssigned: ownershipChanged,
      ...startAt,
    });
    const items = d.log.consumer({ ...queries[1]!, maxBatchRecords: d.maxBatchRecords, ...startAt });
    this.consumers = [interactions, items];
    this.named.set('interactions', interactions);
    this.named.set('items', items);
    this.state = 'running';
    this.runs = [
      this.supervise('interactions', interactions.run(this.watched('interactions', (batch) => this.handleInteractions(batch)))),
      this.supervise('items', items.run(this.watched('items', (batch) => this.handleItems(batch)))),
    ];
    if (writer) {
      this.itemDeltaConsumer = d.log.consumer({
        ...queries[2]!,
        maxBatchRecords: d.maxBatchRecords,
        onPartitionsAssigned: ownershipChanged,
        ...startAt,
      });
      this.consumers.push(this.itemDeltaConsumer);
      this.named.set('item-deltas', this.itemDeltaConsumer);
      this.runs.push(
        this.supervise('item-deltas', this.itemDeltaConsumer.run(this.watched('item-deltas', (batch) => this.handleItemDeltas(batch, writer)))),
      );
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
    // The gauges also move without a batch event: a retried batch whose partition went elsewhere drops out.
    this.reportFailures();
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
    this.maybeCheckpoint();
    await Promise.all(this.consumers.map((c) => c.stop()));
    await this.producer?.close();
    await this.transactions?.close();
    // One write of the state at shutdown: the checkpoint (with positions) where there is a checkpointer, which
    // then owns the snapshot file (the store's own flush and close leave it alone); else the store's flush.
    const checkpointer = this.deps.checkpointer;
    if (checkpointer) {
      // A batch that failed and was not redelivered before the stop may have left effects no position covers:
      // the checkpoint before it stays the one to resume from.
      const settled = this.unsettled.size === 0;
      if (!settled) this.deps.logger.warn({ code: 'CHECKPOINT_SKIPPED', partitions: [...this.unsettled] }, 'no checkpoint at shutdown: a failed batch was not redelivered; the previous checkpoint stays');
      await checkpointer.close(settled ? this.positionsNow() : null);
    } else {
      await this.deps.store.flush();
    }
    this.state = 'stopped';
  }

  /**
   * The checkpoint's positions as consumer options (nothing without a checkpointer). With no checkpoint to
   * resume from, the first one is written here, before anything is consumed: the state as it is, at the
   * positions the consumers of `queries` would start from (`EventLog.startPositions`), which they are then told
   * to start at, so that state and positions match from the first record on (a kill before the first periodic
   * checkpoint restarts there, not at the committed offsets with nothing learned).
   */
  private async startAt(queries: readonly StartQuery[]): Promise<{ startAt?: StartPositions }> {
    const checkpointer = this.deps.checkpointer;
    if (!checkpointer) return {};
    const log = this.deps.log;
    if (checkpointer.startAt === null && log.startPositions) {
      const positions: Record<string, Readonly<Record<number, string>>> = {};
      for (const query of queries) Object.assign(positions, await log.startPositions(query));
      await checkpointer.begin(positions);
      this.deps.logger.info({ positions }, 'no checkpoint to resume from: the first one is written at the consumers\' start positions');
    }
    const startAt = checkpointer.startAt;
    if (!startAt) return {};
    // Partitions the checkpoint lists and no batch moves yet are still at those positions.
    for (const [topic, partitions] of Object.entries(startAt)) {
      for (const [partition, offset] of Object.entries(partitions)) this.position(topic, Number(partition), offset, false);
    }
    return { startAt };
  }

  private position(topic: string, partition: number, next: string, overwrite = true): void {
    let partitions = this.positions.get(topic);
    if (!partitions) this.positions.set(topic, (partitions = new Map()));
    if (overwrite || !partitions.has(partition)) partitions.set(partition, next);
  }

  private positionsNow(): StartPositions {
    const out: Record<string, Record<number, string>> = {};
    for (const [topic, partitions] of this.positions) out[topic] = Object.fromEntries(partitions);
    return out;
  }

  /**
   * `handler` with what checkpoints need: it waits while a checkpoint gate is closed, and once it succeeds the
   * batch's partition position moves past it and a due checkpoint is taken when no other handler is in flight.
   */
  private checkpointed(handler: BatchHandler): BatchHandler {
    if (!this.deps.checkpointer) return handler;
    return async (batch) => {
      while (this.gate) await this.gate.opened;
      const key = `${batch.topic}\u0000${batch.partition}`;
      this.handling++;
      let failed = true;
      try {
        await handler(batch);
        failed = false;
      } catch (err) {
        this.unsettled.add(key);
        throw err;
      } finally {
        this.handling--;
        // The last handler in flight opens a closed gate, whether or not it succeeded.
        if (failed) this.maybeCheckpoint();
      }
      this.unsettled.delete(key);
      const last = batch.records[batch.records.length - 1];
      if (last) this.position(batch.topic, batch.partition, (BigInt(last.offset) + 1n).toString());
      this.batchesSinceCheckpoint++;
      this.maybeCheckpoint();
    };
  }

  /** Takes a due checkpoint now if no handler is in flight, else closes the gate until they end. */
  private maybeCheckpoint(): void {
    const checkpointer = this.deps.checkpointer;
    if (!checkpointer) return;
    if (this.state !== 'running') {
      // Shutting down: the last checkpoint comes after the consumers stop; nothing may wait at the gate.
      this.gate?.open();
      this.gate = null;
      return;
    }
    if (!this.gate) {
      if (!checkpointer.due(this.batchesSinceCheckpoint)) return;
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      this.gate = { opened, open };
    }
    if (this.handling > 0) return;
    const gate = this.gate;
    this.gate = null;
    try {
      // A failed batch waiting for redelivery may have left effects in the store that no position covers.
      if (this.unsettled.size === 0) {
        checkpointer.take(this.positionsNow());
        this.batchesSinceCheckpoint = 0;
      }
    } finally {
      gate.open();
    }
  }

  private async supervise(name: ConsumerName, run: Promise<void>): Promise<void> {
    try {
      await run;
    } catch (err) {
      this.failure ??= `${name} consumer failed (${errorCode(err)})`;
      this.deps.logger.fatal({ consumer: name, code: errorCode(err), err: errorMessage(err) }, 'consumer failed');
      throw err;
    }
  }

  /** `handler`, watched for stuck batches; each failed attempt is counted and the gauge of its consumer set. */
  private watched(name: ConsumerName, handler: BatchHandler): BatchHandler {
    const watched = this.watch.wrap(name, this.checkpointed(handler), (consumer) => this.deps.instruments.batchRetried(consumer));
    return async (batch) => {
      try {
        await watched(batch);
      } finally {
        this.deps.instruments.batchFailures(name, this.watch.failures(name));
      }
    };
  }

  private reportFailures(): void {
    for (const name of this.named.keys()) this.deps.instruments.batchFailures(name, this.watch.failures(name));
  }

  private async handleInteractions(batch: ConsumedBatch): Promise<void> {
    const d = this.deps;
    d.instruments.inFlight(batch.records.length);
    const started = performance.now();
    // The batch's learning stays open until its outputs are published: a failed publish undoes it, so the
    // redelivered batch is learned once (and, learning being deterministic, ranks the same).
    const out = await d.processor.process(batch.records, { settleLater: true });
    try {
      await this.publishOutputs(batch, out, started);
    } catch (err) {
      await out.settle(false);
      throw err;
    }
    await out.settle(true);
    this.processedRecords += batch.records.length;
  }

  private async publishOutputs(batch: ConsumedBatch, out: BatchOutput, started: number): Promise<void> {
    const d = this.deps;
    const records: OutgoingRecord[] = [];
    for (const rec of out.recommendations) {
      // A batch's worth of encoding is long enough to count against the processor's turn of the event loop.
      await d.processor.yieldIfDue();
      records.push(await recommendationRecord(rec, d.topics.recommendations, d.codecs, d.framing));
    }
    for (const message of out.itemDeltas) {
      records.push(await itemDeltasRecord(message, d.topics.itemDeltas, d.codecs, d.framing));
    }
    for (const teacherCase of out.teacherCases) {
      records.push(await teacherCaseRecord(teacherCase, d.topics.teacherCases, d.codecs, d.framing));
    }
    for (const letter of out.deadLetters) {
      records.push(await deadLetterRecord(letter, d.topics.deadLetters, d.codecs, d.framing, d.deadLetterMaxBytes));
      d.logger.warn({ topic: letter.source.topic, partition: letter.source.partition, offset: letter.source.offset, code: letter.code }, 'dead-lettered');
    }
    const publishStart = performance.now();
    try {
      await this.publish(batch, d.groupId, records);
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
  }

  private async handleItems(batch: ConsumedBatch): Promise<void> {
    const d = this.deps;
    const items = [];
    const letters: OutgoingRecord[] = [];
    for (const record of batch.records) {
      try {
        items.push(await d.framing.decode(d.codecs.item, record.value, record.headers));
      } catch (err) {
        // Only bad input is dead-lettered; a registry 5xx or refused credentials would otherwise commit valid
        // catalogue records as dead letters. Transient: the batch is redelivered; fatal: the consumer stops.
        if (!(err instanceof BadInputError)) throw escalate(err, record);
        const letter = toDeadLetter(record, err, Date.now());
        letters.push(await deadLetterRecord(letter, d.topics.deadLetters, d.codecs, d.framing, d.deadLetterMaxBytes));
        d.instruments.deadLettered(letter.code);
        d.logger.warn({ topic: record.topic, partition: record.partition, offset: record.offset, code: err.code }, 'dead-lettered');
      }
    }
    if (items.length) await d.store.putItemMetadata(items.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
    await this.publish(batch, `${d.groupId}.items`, letters);
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
        if (!(err instanceof BadInputError)) throw escalate(err, record);
        const letter = toDeadLetter(record, err, Date.now());
        letters.push(await deadLetterRecord(letter, d.topics.deadLetters, d.codecs, d.framing, d.deadLetterMaxBytes));
        d.instruments.deadLettered(letter.code);
        d.logger.warn({ topic: record.topic, partition: record.partition, offset: record.offset, code: err.code }, 'dead-lettered');
      }
    }
    const write = await writer.write(messages);
    if (write.duplicates > 0) {
      d.logger.info({ topic: batch.topic, partition: batch.partition, duplicates: write.duplicates }, 'skipped repeated item deltas');
    }
    await this.publish(batch, `${d.groupId}.item-deltas`, letters);
  }

  /**
   * Sends a batch's outputs: in one transaction with the batch's consumed offset for `groupId` (the consumer's
   * group) with exactly-once outputs, else with the plain producer (the consumer commits after the handler).
   */
  private async publish(batch: ConsumedBatch, groupId: string, records: readonly OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    const last = batch.records[batch.records.length - 1];
    if (this.transactions && last) {
      const nextOffset = (BigInt(last.offset) + 1n).toString();
      await this.transactions.sendWithOffsets(records, { groupId, topic: batch.topic, partition: batch.partition, nextOffset });
    } else {
      await this.producer!.send(records);
    }
  }
}
