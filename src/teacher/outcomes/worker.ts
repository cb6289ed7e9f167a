import type { Codecs } from '../../eventlog/codec/avro.ts';
import type { Framing } from '../../eventlog/codec/framing.ts';
import type { ConsumedBatch, EventConsumer, EventLog } from '../../eventlog/port.ts';
import { BadInputError, errorCode, errorMessage } from '../../errors/index.ts';
import type { Interaction } from '../../domain/events.ts';
import type { TeacherCase } from '../../domain/teacher.ts';
import type { Logger } from '../../logging/logger.ts';
import type { DurableOutcomeJoin } from './durable.ts';
import { PartitionWatermark } from './watermark.ts';

/**
 * Feeds the outcome join from the log: one consumer (group `<groupId>`) on the teacher-cases and the
 * interactions topics. Every batch is applied, handed to the join's sink and journaled before its handler
 * resolves, so the log commits only what the journal holds (at-least-once; the join ignores a case or an
 * interaction it already has).
 *
 * Batches of the two topics (and of several partitions) may be handled concurrently by the consumer; the
 * join is one state machine, so calls go through a queue in arrival order.
 *
 * Two watermarks (`PartitionWatermark`), each the minimum over a topic's partitions of their latest event
 * times. The interactions' expires cases: a partition read behind the others does not expire its users'
 * cases; one that has not delivered anything yet does not hold it back (it may have no data at all), and an
 * idle one does: its users' cases expire only when it moves again or at `advance(Infinity)`. The cases' lets
 * the join forget buffered interactions: every partition of the teacher-cases topic holds it back, those that
 * have delivered nothing yet too when the log can list them (`EventLog.startPositions`), because a case read
 * late from a slow partition still needs the interactions after it. A cases partition that never gets a case
 * keeps the buffer to `maxBufferedPerUser` per user.
 *
 * A record that cannot be decoded is not the join's to repair: the pipeline already dead-lettered a bad
 * interaction, and a bad case means a writer bug. It is skipped, logged with its position and code, and
 * counted (`onSkipped`), never silently.
 */

export interface OutcomeWorkerDeps {
  readonly log: EventLog;
  readonly join: DurableOutcomeJoin;
  readonly codecs: Codecs;
  readonly framing: Framing;
  readonly topics: { readonly interactions: string; readonly teacherCases: string };
  readonly groupId: string;
  readonly maxBatchRecords: number;
  readonly logger: Logger;
  readonly onSkipped?: (code: string) => void;
}

export class OutcomeWorker {
  private consumer: EventConsumer | null = null;
  private run: Promise<void> | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private stopping: Promise<void> | null = null;
  private readonly interactionMarks = new PartitionWatermark();
  private readonly caseMarks = new PartitionWatermark();
  private casePartitionsListed = false;
  /** Records of each topic applied to the join (and journaled) since start. */
  casesRead = 0;
  interactionsRead = 0;

  constructor(private readonly deps: OutcomeWorkerDeps) {}

  start(): void {
    if (this.consumer) throw new Error('outcome worker already started');
    const d = this.deps;
    this.consumer = d.log.consumer({
      groupId: d.groupId,
      topics: [d.topics.teacherCases, d.topics.interactions],
      fromBeginning: true,
      maxBatchRecords: d.maxBatchRecords,
    });
    this.run = this.consumer.run((batch) => this.serial(() => this.handle(batch)));
  }

  /** Resolves when the consumer stops; rejects when it failed. */
  async done(): Promise<void> {
    await this.run;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.consumer?.stop();
      await this.queue.catch(() => undefined);
      await this.deps.join.close();
    })();
    return this.stopping;
  }

  /**
   * Moves the join's watermark to `watermarkMs`, in order with the batches being applied. A finite replay
   * calls it with Infinity once every interaction is read: what still waits will never be labelled.
   */
  async advance(watermarkMs: number): Promise<void> {
    await this.serial(() => this.deps.join.advance(watermarkMs, this.caseMarks.ms));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async handle(batch: ConsumedBatch): Promise<void> {
    const d = this.deps;
    if (batch.topic === d.topics.teacherCases) {
      await this.listCasePartitions();
      const cases: TeacherCase[] = [];
      for (const record of batch.records) {
        const c = await this.decode(() => d.framing.decode(d.codecs.teacherCase, record.value, record.headers), record);
        if (c) cases.push(c);
      }
      await d.join.addCases(cases);
      this.caseMarks.update(batch.partition, cases.map((c) => c.atMs));
      this.casesRead += batch.records.length;
    } else {
      const events: Interaction[] = [];
      for (const record of batch.records) {
        const e = await this.decode(() => d.framing.decode(d.codecs.interaction, record.value, record.headers), record);
        if (e) events.push(e);
      }
      await d.join.observe(events);
      this.interactionMarks.update(batch.partition, events.map((e) => e.timestampMs));
      this.interactionsRead += batch.records.length;
    }
    // Nothing expires and nothing is forgotten unless a watermark moved: no journal write for it then.
    const join = d.join.join;
    if (this.interactionMarks.ms > join.watermarkMs || this.caseMarks.ms > join.caseWatermarkMs) await d.join.advance(this.interactionMarks.ms, this.caseMarks.ms);
  }

  /** Once: the teacher-cases partitions the log has, so that one not read yet holds the case watermark. */
  private async listCasePartitions(): Promise<void> {
    if (this.casePartitionsListed) return;
    const d = this.deps;
    const positions = await d.log.startPositions?.({ groupId: d.groupId, topics: [d.topics.teacherCases], fromBeginning: true });
    this.caseMarks.expect(Object.keys(positions?.[d.topics.teacherCases] ?? {}).map(Number));
    this.casePartitionsListed = true;
  }

  private async decode<T>(fn: () => Promise<T>, record: ConsumedBatch['records'][number]): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      // Only bad bytes are skipped; a registry that is down or refuses us fails the batch (retried or fatal).
      if (!(err instanceof BadInputError)) throw err;
      const code = errorCode(err);
      this.deps.logger.warn({ topic: record.topic, partition: record.partition, offset: record.offset, code, err: errorMessage(err) }, 'outcome join skipped an undecodable record');
      this.deps.onSkipped?.(code);
      return null;
    }
  }
}
