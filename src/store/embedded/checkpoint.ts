import { errorCode, errorMessage } from '../../errors/index.ts';
import type { EventLog, StartPositions } from '../../eventlog/port.ts';
import type { Logger } from '../../logging/logger.ts';
import type { EmbeddedStore, SnapshotWritten } from './index.ts';
import type { NegativeRing } from './state/snapshot.ts';

/** A negative sampler over item slots, as the checkpoint needs it (`NegativeSampler<number>`). */
export interface CheckpointedSampler {
  snapshot(): NegativeRing;
  restore(saved: NegativeRing): void;
}

/**
 * Checkpoints of the embedded store: its snapshot file written with the source positions it reflects, so that
 * state and offsets move together (as a Flink checkpoint aligned with its source offsets).
 *
 * - What: the whole typed state (`state/snapshot.ts`), the negative sampler's ring, per topic and
 *   partition the next offset to consume (`CheckpointMeta`): the state holds every record before those
 *   positions and none after; and the attachments (`attach`), state kept elsewhere that must move with the
 *   same offsets (an online experiment's counts and pending lists).
 * - When: the runner asks `due()` after each batch and calls `take()` at a point where no batch of any
 *   consumer is in flight (it holds new batches back until the ones in flight end: an aligned checkpoint).
 *   Due once `store.embedded.checkpointIntervalMs` passed or `checkpointEveryBatches` batches were done since
 *   the last one, and never while one is still being written. `close()` writes the last one at shutdown.
 * - How: `take()` copies the columns synchronously (memcpy of the typed arrays; the stream waits only for
 *   that), then encodes and writes them in the background through `util/files.ts` (temp file, fsync, atomic
 *   rename, directory fsync): the file is always a whole checkpoint, the old or the new one. A failed write is
 *   logged (`CHECKPOINT_WRITE_FAILED`) and the next checkpoint tries again; the stream goes on.
 * - First: with nothing to resume from, `begin()` writes the state (empty) at the positions the consumers are
 *   about to start from, before they consume: there is always a checkpoint whose positions match its state.
 * - Resume: the restored positions become the consumers' `startAt`, and they win over the group's committed
 *   offsets in both directions. Behind the committed offsets (a crash after commits the checkpoint does not
 *   cover): the records between are consumed again and learned once, since the state does not hold them;
 *   their outputs are published again (at-least-once, de-duplicated by event id downstream). Ahead (commits
 *   lost or not yet made when the checkpoint was taken): nothing it holds is learned twice. Positions apply
 *   only to the log they were recorded on (`EventLog.offsetsScope`): an embedded log in a new process counts
 *   from 0 again, so there the state is restored and the positions are not. Partitions a checkpoint does not
 *   list start from the committed offsets.
 */

/**
 * State outside the store that must move with the same offsets (an online experiment's counts): captured with
 * each checkpoint, in the same synchronous copy, and handed back from the checkpoint the stream resumes from.
 */
export interface CheckpointAttachment {
  /** A JSON-able copy of the state now (called where no batch is in flight). */
  capture(): unknown;
  /** The state of the restored checkpoint; replaces what the owner holds. */
  restore(saved: unknown): void;
}

/** What a checkpoint stores beside the state (the snapshot's `meta`). */
export interface CheckpointMeta {
  readonly checkpoint: 1;
  /** The log the positions were recorded on (`EventLog.kind`, `EventLog.offsetsScope`). */
  readonly eventLog: { readonly kind: string; readonly offsetsScope: string | null };
  /** Per topic and partition, the next offset to consume: the state reflects every record before it. */
  readonly positions: StartPositions;
  /** When it was taken, epoch ms (for people; nothing depends on it). */
  readonly takenAtMs: number;
  /** Each attachment's capture, by name ({@link EmbeddedCheckpointer.attach}); absent in older checkpoints. */
  readonly attachments?: Readonly<Record<string, unknown>>;
}

/** `meta` of a restored snapshot as a checkpoint's, or null when it is not one (a plain `flush()`, format 1). */
export function checkpointMeta(meta: unknown): CheckpointMeta | null {
  if (typeof meta !== 'object' || meta === null) return null;
  const m = meta as Partial<CheckpointMeta>;
  if (m.checkpoint !== 1 || typeof m.positions !== 'object' || m.positions === null || typeof m.eventLog !== 'object') return null;
  return m as CheckpointMeta;
}

export interface CheckpointerOptions {
  readonly store: EmbeddedStore;
  /** The sampler whose ring the checkpoint carries (`Engine.negativeSlots`); restored here from the snapshot. */
  readonly negatives?: CheckpointedSampler | null;
  /** The log the positions refer to. */
  readonly log: Pick<EventLog, 'kind' | 'offsetsScope'>;
  /** `store.embedded.checkpointIntervalMs`: due this long after the last one; 0 = not by time. */
  readonly intervalMs: number;
  /** `store.embedded.checkpointEveryBatches`: due after this many batches; 0 = not by count. */
  readonly everyBatches: number;
  readonly logger: Logger;
  /** Epoch ms, as `Date.now()` (the default). */
  readonly clock?: () => number;
}

/** One checkpoint written: size, timings and the positions it holds. */
export interface CheckpointWritten extends SnapshotWritten {
  /** The synchronous copy of the state, ms (the only part the stream waits for). */
  readonly captureMs: number;
  readonly positions: StartPositions;
}

export class EmbeddedCheckpointer {
  /**
   * Where the consumers start: the restored checkpoint's positions when they are of this log, else null until
   * `begin()` has written the first checkpoint at the positions it was given.
   */
  startAt: StartPositions | null = null;
  /** The last checkpoint written (tests, benchmarks). */
  lastWritten: CheckpointWritten | null = null;
  /** Checkpoints written, and writes that failed. */
  written = 0;
  failed = 0;
  private writing: Promise<void> | null = null;
  private readonly attachments = new Map<string, CheckpointAttachment>();
  /** The restored checkpoint's attachments, handed over as their owners attach. */
  private readonly restoredAttachments: Readonly<Record<string, unknown>>;
  private lastAtMs: number;
  private closed = false;
  private readonly clock: () => number;

  constructor(private readonly options: CheckpointerOptions) {
    this.clock = options.clock ?? Date.now;
    this.lastAtMs = this.clock();
    options.store.handOverSnapshots();
    const restored = options.store.restored;
    if (restored?.negatives && options.negatives) options.negatives.restore(restored.negatives);
    const meta = checkpointMeta(restored?.meta);
    this.restoredAttachments = meta?.attachments ?? {};
    if (!restored || !meta) return;
    const log = options.log;
    if (meta.eventLog.kind === log.kind && log.offsetsScope !== undefined && meta.eventLog.offsetsScope === log.offsetsScope) {
      this.startAt = meta.positions;
      options.logger.info({ path: restored.path, positions: meta.positions, bytes: restored.bytes, readMs: Math.round(restored.readMs) }, 'resuming from the checkpoint\'s positions');
    } else {
      options.logger.warn(
        { path: restored.path, code: 'CHECKPOINT_OTHER_LOG', recordedOn: meta.eventLog.kind, log: log.kind },
        'the checkpoint\'s positions were recorded on another event log (an embedded log does not outlive its process): its state is restored, consumers start from their committed offsets',
      );
    }
  }

  /**
   * Adds `attachment`'s state to every checkpoint from now on (attach before the runner starts), and hands it
   * the restored checkpoint's copy now, if that checkpoint has one. Returns whether it restored.
   */
  attach(name: string, attachment: CheckpointAttachment): boolean {
    if (this.attachments.has(name)) throw new Error(`checkpoint attachment ${name} attached twice`);
    this.attachments.set(name, attachment);
    if (!Object.hasOwn(this.restoredAttachments, name)) return false;
    attachment.restore(this.restoredAttachments[name]);
    return true;
  }

  /**
   * The first checkpoint, when there is none to resume from (`startAt` null: no snapshot, a snapshot without
   * positions, or positions of another log): the state as it is (empty, or restored without usable positions)
   * at `positions`, where the consumers will start (the groups' committed offsets, or the topics' start).
   * Written and synced before it resolves, so a process killed before its first periodic checkpoint restarts
   * from a state whose positions match it rather than from the committed offsets with nothing learned. Rejects
   * when it cannot be written: the snapshot path is unusable, which is better said before consuming than after.
   */
  async begin(positions: StartPositions): Promise<void> {
    if (this.startAt !== null) return;
    await this.settled();
    this.wrote(await this.capture(positions)());
    this.lastAtMs = this.clock();
    this.startAt = positions;
  }

  /** True when a checkpoint is due after `batches` batches since the last one, and none is being written. */
  due(batches: number): boolean {
    if (this.closed || this.writing) return false;
    const { intervalMs, everyBatches } = this.options;
    return (everyBatches > 0 && batches >= everyBatches) || (intervalMs > 0 && this.clock() - this.lastAtMs >= intervalMs);
  }

  /**
   * Copies the state as of `positions` now (the caller makes sure no batch is in flight) and writes it in the
   * background. Never throws: a failed write is logged and counted; the next due checkpoint tries again.
   */
  take(positions: StartPositions): void {
    if (this.closed || this.writing) return;
    let capture: () => Promise<CheckpointWritten>;
    try {
      capture = this.capture(positions);
    } catch (err) {
      this.failedWrite(err);
      return;
    }
    this.lastAtMs = this.clock();
    this.writing = capture().then(
      (written) => this.wrote(written),
      (err: unknown) => this.failedWrite(err),
    ).finally(() => (this.writing = null));
  }

  /** Resolves once no checkpoint is being written. */
  async settled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /**
   * The last checkpoint, at shutdown, once the consumers have stopped: waits for a write in flight, then
   * writes (null: nothing, the last one written stays); rejects when that write fails. Later `take()`s do nothing.
   */
  async close(positions: StartPositions | null): Promise<void> {
    this.closed = true;
    await this.settled();
    if (positions) this.wrote(await this.capture(positions)());
  }

  /** The synchronous copy; the returned function encodes and writes it. */
  private capture(positions: StartPositions): () => Promise<CheckpointWritten> {
    const started = performance.now();
    const meta: CheckpointMeta = {
      checkpoint: 1,
      eventLog: { kind: this.options.log.kind, offsetsScope: this.options.log.offsetsScope ?? null },
      positions,
      takenAtMs: this.clock(),
      attachments: Object.fromEntries([...this.attachments].map(([name, a]) => [name, a.capture()])),
    };
    const captured = this.options.store.captureSnapshot({ meta, negatives: this.options.negatives?.snapshot() ?? null });
    const captureMs = performance.now() - started;
    return async () => ({ ...(await this.options.store.writeSnapshot(captured)), captureMs, positions });
  }

  private wrote(written: CheckpointWritten): void {
    this.lastWritten = written;
    this.written++;
    this.options.logger.info(
      {
        bytes: written.bytes,
        captureMs: round(written.captureMs),
        encodeMs: round(written.encodeMs),
        writeMs: round(written.writeMs),
      },
      'checkpoint written',
    );
  }

  private failedWrite(err: unknown): void {
    this.failed++;
    this.options.logger.error({ code: 'CHECKPOINT_WRITE_FAILED', cause: errorCode(err), err: errorMessage(err) }, 'checkpoint write failed; the next one tries again');
  }
}

const round = (ms: number): number => Math.round(ms * 10) / 10;
