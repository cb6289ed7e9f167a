import type { TeacherCase, Trajectory } from '../domain/teacher.ts';
import type { ConsumedBatch, EventConsumer, EventLog, EventProducer, LogRecord, OutgoingRecord } from '../eventlog/port.ts';
import { BadInputError, TransientError, errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { TeacherInstruments } from './instruments.ts';
import { RETRIABLE_FAILURES, failureCodeOf } from './limits.ts';
import { trajectoryRecord } from './trajectories/codec.ts';

export interface TeacherWorkerOptions {
  readonly groupId: string;
  readonly topics: { readonly teacherCases: string; readonly trajectories: string };
  readonly maxBatchRecords: number;
  readonly fromBeginning: boolean;
  /** Cases run at once. */
  readonly concurrency: number;
  /** Tries of a case whose run failed for a retriable reason before its failed trajectory is produced. */
  readonly maxCaseAttempts: number;
}

export interface TeacherWorkerDeps {
  readonly log: EventLog;
  /** Throws `BadInputError` for a record that is not a case (it goes to the DLQ). */
  readonly decodeCase: (record: LogRecord) => Promise<TeacherCase>;
  readonly deadLetter: (record: LogRecord, err: BadInputError) => Promise<OutgoingRecord>;
  /** One teacher run (`runTeacher` with its dependencies bound); rejects only on a fatal error. */
  readonly teach: (teacherCase: TeacherCase) => Promise<Trajectory>;
  readonly instruments: TeacherInstruments;
  readonly logger: Logger;
}

type WorkerState = 'created' | 'running' | 'stopping' | 'stopped';

/** Case ids produced recently, so that a redelivered batch does not run them again. */
const REMEMBERED_CASES = 10_000;

/**
 * Consumes the teacher-cases topic, runs the teacher on each case with bounded concurrency and produces one
 * trajectory per case to the trajectories topic. At least once: a batch's offsets are committed only after
 * its trajectories (and dead letters) are acknowledged.
 *
 * - A record that is not a case goes to the DLQ with the reason; the stream goes on.
 * - A run that failed (limits, malformed answers) is a result: its failed trajectory is produced.
 * - A run that failed for a retriable reason (backend or store away, cancelled) makes the batch fail after
 *   the batch's other trajectories are produced, so the log redelivers it after a backoff; cases already
 *   produced are skipped then. After `maxCaseAttempts` tries its failed trajectory is produced instead.
 * - A `FatalError` (backend auth or config) stops the consumer and `run()` rejects: stop loudly.
 *
 * Shutdown: `stop()` stops fetching, lets the cases in flight finish (each bounded by its wall-time limit),
 * produces their trajectories, commits, then closes the producer. Idempotent.
 */
export class TeacherWorker {
  private state: WorkerState = 'created';
  private consumer: EventConsumer | null = null;
  private producer: EventProducer | null = null;
  private running: Promise<void> | null = null;
  private stopped: Promise<void> | null = null;
  private readonly attempts = new Map<string, number>();
  private readonly produced = new Set<string>();

  constructor(
    private readonly deps: TeacherWorkerDeps,
    private readonly options: TeacherWorkerOptions,
  ) {
    if (options.concurrency < 1) throw new Error('TeacherWorker: concurrency must be at least 1');
  }

  /** Starts consuming; resolves when stopped, rejects on a fatal error. */
  run(): Promise<void> {
    if (this.state !== 'created') throw new Error(`TeacherWorker.run: the worker is ${this.state}`);
    this.state = 'running';
    const o = this.options;
    this.producer = this.deps.log.producer();
    this.consumer = this.deps.log.consumer({
      groupId: o.groupId,
      topics: [o.topics.teacherCases],
      fromBeginning: o.fromBeginning,
      maxBatchRecords: o.maxBatchRecords,
    });
    this.running = this.consumer.run((batch) => this.handle(batch));
    return this.running;
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'created') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    try {
      await this.consumer?.stop();
      // run()'s rejection (a fatal error) belongs to whoever awaits run(); here only that it ended.
      await this.running?.then(
        () => undefined,
        () => undefined,
      );
    } finally {
      await this.producer?.close();
      this.state = 'stopped';
    }
  }

  private async handle(batch: ConsumedBatch): Promise<void> {
    const { deps, options } = this;
    const outputs: OutgoingRecord[] = [];
    const cases: TeacherCase[] = [];
    for (const record of batch.records) {
      try {
        const c = await deps.decodeCase(record);
        if (!this.produced.has(c.caseId)) cases.push(c);
      } catch (err) {
        if (!(err instanceof BadInputError)) throw err;
        deps.logger.warn({ topic: record.topic, partition: record.partition, offset: record.offset, code: err.code, reason: errorMessage(err) }, 'teacher case dead-lettered');
        deps.instruments.deadLettered(err.code);
        outputs.push(await deps.deadLetter(record, err));
      }
    }
    for (let i = 0; i < cases.length; i++) deps.instruments.caseReceived();

    const results = await boundedAll(cases, options.concurrency, (c) => deps.teach(c));
    const retry: string[] = [];
    const done: string[] = [];
    results.forEach((trajectory, i) => {
      const c = cases[i]!;
      const code = failureCodeOf(trajectory.failure);
      if (code && RETRIABLE_FAILURES.has(code)) {
        const attempts = (this.attempts.get(c.caseId) ?? 0) + 1;
        this.attempts.set(c.caseId, attempts);
        if (attempts < options.maxCaseAttempts) {
          deps.logger.warn({ caseId: c.caseId, code, attempt: attempts, reason: trajectory.failure }, 'teacher run failed for a retriable reason; the case will be retried');
          retry.push(c.caseId);
          return;
        }
      }
      if (trajectory.status === 'failed') deps.logger.warn({ caseId: c.caseId, code, reason: trajectory.failure }, 'teacher run failed');
      this.attempts.delete(c.caseId);
      outputs.push(trajectoryRecord(trajectory, c.user.userId, options.topics.trajectories));
      done.push(c.caseId);
    });
    if (outputs.length) await this.producer!.send(outputs);
    for (const id of done) this.remember(id);
    await this.reportBacklog();
    if (retry.length) throw new TransientError('TEACHER_CASE_RETRY', `${retry.length} case(s) to retry: ${retry.slice(0, 3).join(', ')}`);
  }

  private remember(caseId: string): void {
    this.produced.add(caseId);
    if (this.produced.size > REMEMBERED_CASES) this.produced.delete(this.produced.values().next().value!);
  }

  private async reportBacklog(): Promise<void> {
    const lag = await this.consumer!.lag();
    this.deps.instruments.backlog(lag.reduce((s, p) => s + p.lag, 0));
  }
}

/**
 * `fn` over `items` with at most `limit` running at once; results in input order. Waits for every started
 * call even when one rejects, then rethrows the first rejection, so nothing runs on unobserved.
 */
export async function boundedAll<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed) throw (failed as { err: unknown }).err;
  return results;
}
