import type { Config } from '../config/schema.ts';
import type { LabelledTrajectory } from '../domain/teacher.ts';
import type { Codecs } from '../eventlog/codec/avro.ts';
import type { Framing } from '../eventlog/codec/framing.ts';
import type { EventConsumer, EventLog } from '../eventlog/port.ts';
import { BadInputError, errorCode, errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { FileSystem } from '../util/files.ts';
import { judge, type KeepFilter } from './dataset/label.ts';
import { TrajectoryPairing } from './dataset/pairing.ts';
import { DatasetWriter } from './dataset/writer.ts';
import { DurableOutcomeJoin } from './outcomes/durable.ts';
import { OutcomeWorker } from './outcomes/worker.ts';
import { decodeTrajectory } from './trajectories/codec.ts';

/**
 * The labelling half of the side stream, as one unit: the outcome join (teacher cases + interactions →
 * labelled or expired cases), the pairing of those with the teacher's trajectories (from the trajectories
 * topic), and the dataset export that `train/` reads. Its state (pending cases, unpaired halves) lives in
 * journals under `sampling.outcomes.dataDir`, so one labeller runs per data directory.
 *
 * Stop order: the two consumers first (each finishes and journals its batch in flight), then the pairing's
 * journal, then the writer (which renames its open parts and writes the manifest).
 */

export type LabelResult = 'kept' | 'discarded' | 'expired';

export interface LabellerDeps {
  readonly log: EventLog;
  readonly codecs: Codecs;
  readonly framing: Framing;
  readonly topics: { readonly interactions: string; readonly teacherCases: string; readonly trajectories: string };
  readonly groupId: string;
  readonly maxBatchRecords: number;
  readonly logger: Logger;
  /** Counts each exported record by what the keep filter made of it. */
  readonly onLabelled?: (result: LabelResult) => void;
  readonly onSkipped?: (code: string) => void;
  /** File operations of the export and its journals (tests inject a failing one); `node:fs` by default. */
  readonly fs?: FileSystem;
}

export class Labeller {
  private trajectoryConsumer: EventConsumer | null = null;
  private trajectoryRun: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  trajectoriesRead = 0;
  /** Cases that left the pairing unlabelled (unjoinable, or dropped beyond `maxPendingPairs`). */
  get dropped(): number {
    return this.droppedCount.n;
  }

  private constructor(
    private readonly droppedCount: { n: number },
    private readonly deps: LabellerDeps,
    readonly writer: DatasetWriter,
    readonly pairing: TrajectoryPairing,
    readonly outcomes: OutcomeWorker,
  ) {}

  static async open(sampling: Config['sampling'], deps: LabellerDeps): Promise<Labeller> {
    const filter: KeepFilter = { keep: sampling.dataset.keep, k: sampling.dataset.keepTopK };
    const dropped = { n: 0 };
    const fs = deps.fs ? { fs: deps.fs } : {};
    const writer = await DatasetWriter.open({ dir: sampling.dataset.dir, maxRecordsPerFile: sampling.dataset.maxRecordsPerFile, filter, ...fs });
    const count = (records: readonly LabelledTrajectory[]): void => {
      for (const r of records) deps.onLabelled?.(resultOf(r, filter));
    };
    const pairing = await TrajectoryPairing.open({
      dataDir: sampling.outcomes.dataDir,
      compactAfterEntries: sampling.outcomes.compactAfterEntries,
      maxPending: sampling.dataset.maxPendingPairs,
      ...fs,
      sink: async (records) => {
        await writer.write(records);
        count(records);
      },
      onDropped: (why, caseId) => {
        dropped.n++;
        deps.logger.warn({ why, caseId }, 'a case left the pairing unlabelled');
      },
    });
    const join = await DurableOutcomeJoin.open({ ...sampling.outcomes, ...fs, sink: (r) => pairing.addOutcomes(r) });
    const outcomes = new OutcomeWorker({
      log: deps.log,
      join,
      codecs: deps.codecs,
      framing: deps.framing,
      topics: deps.topics,
      groupId: `${deps.groupId}.outcomes`,
      maxBatchRecords: deps.maxBatchRecords,
      logger: deps.logger,
      ...(deps.onSkipped ? { onSkipped: deps.onSkipped } : {}),
    });
    return new Labeller(dropped, deps, writer, pairing, outcomes);
  }

  start(): void {
    if (this.trajectoryConsumer) throw new Error('labeller already started');
    const d = this.deps;
    this.outcomes.start();
    this.trajectoryConsumer = d.log.consumer({
      groupId: `${d.groupId}.trajectories`,
      topics: [d.topics.trajectories],
      fromBeginning: true,
      maxBatchRecords: d.maxBatchRecords,
    });
    this.trajectoryRun = this.trajectoryConsumer.run(async (batch) => {
      const trajectories = [];
      for (const record of batch.records) {
        try {
          trajectories.push(decodeTrajectory(record));
        } catch (err) {
          if (!(err instanceof BadInputError)) throw err;
          d.logger.warn({ topic: record.topic, partition: record.partition, offset: record.offset, err: errorMessage(err) }, 'labeller skipped an undecodable trajectory');
          d.onSkipped?.(errorCode(err));
        }
      }
      await this.pairing.addTrajectories(trajectories);
      this.trajectoriesRead += batch.records.length;
    });
  }

  /** Resolves when both consumers stop; rejects when one failed. */
  async done(): Promise<void> {
    await Promise.all([this.outcomes.done(), this.trajectoryRun]);
  }

  /**
   * For a finite replay: expires every case still waiting for an interaction that will never come. Call
   * after the interactions are all read; the expired cases then pair with their trajectories as they arrive.
   */
  async expireAll(): Promise<void> {
    await this.outcomes.advance(Number.POSITIVE_INFINITY);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([this.trajectoryConsumer?.stop(), this.outcomes.stop()]);
      await this.pairing.close();
      await this.writer.close();
    })();
    return this.stopping;
  }
}

function resultOf(record: LabelledTrajectory, filter: KeepFilter): LabelResult {
  const verdict = judge(record, filter);
  if (verdict.kept) return 'kept';
  return verdict.why === 'expired' ? 'expired' : 'discarded';
}
